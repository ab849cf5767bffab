"""The site configuration files in db/ and the placeholder ``plantds config`` fills in (pure:
files only, no Tango DB)."""

from __future__ import annotations

import json
import tempfile

import pytest

from plantds.server import archiving, config, demo

PLACEHOLDER = config.TANGO_HOST_PLACEHOLDER
# The configurations a site loads: the demo plant (as `plantds demo` loads it, made from the
# template) and the template. Both archive what db/archiving.json lists (`plantds archive apply`).
DOCUMENTS = {
    "demo": lambda: demo.demo_config(),
    "site-template": lambda: json.loads(config.bundled("site-template.json").read_text()),
}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def servers_of(document: str) -> dict:
    return DOCUMENTS[document]()["servers"]


def devices_of(servers: dict) -> dict[str, dict]:
    """device name (lower case) → its dsconfig block."""
    return {
        device.lower(): block
        for instances in servers.values()
        for classes in instances.values()
        for devices in classes.values()
        for device, block in devices.items()
    }


def archive_entries() -> list[str]:
    """db/archiving.json's entries as written (with the placeholder)."""
    plan = json.loads(config.bundled("archiving.json").read_text())
    return [entry for entries in plan["archivers"].values() for entry in entries]


def test_resolved_fills_in_the_tango_host_in_a_copy(tmp_path):
    source = tmp_path / "site.json"
    text = json.dumps({"AttributeList": [f"tango://{PLACEHOLDER}/plant/compressor/1/highpressure"]})
    source.write_text(text)
    (tmp_path / "out").mkdir()
    out = config.resolved(source, "tango-db.example.org:10000", out_dir=tmp_path / "out")
    assert out != source and out.name == "site.json"
    assert json.loads(out.read_text()) == {
        "AttributeList": ["tango://tango-db.example.org:10000/plant/compressor/1/highpressure"]
    }
    assert source.read_text() == text  # the site's own file is never rewritten


def test_resolved_leaves_a_file_without_placeholder_as_it_is(tmp_path):
    source = tmp_path / "plain.json"
    source.write_text('{"servers": {}}')
    assert config.resolved(source, "tango-db.example.org:10000", out_dir=tmp_path) == source


def test_load_leaves_no_temporary_file_even_when_json2tango_fails(tmp_path, monkeypatch):
    """The resolved copy and json2tango's folder live in TMPDIR only while it runs."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the TMPDIR of this process
    source = tmp_path / "site.json"
    source.write_text(json.dumps({"servers": {}, "AttributeList": [f"tango://{PLACEHOLDER}/a/b/c/d"]}))
    # Nothing listens on port 1: json2tango exits with an error after reading the file.
    with pytest.raises(RuntimeError, match="json2tango failed"):
        config.load(source, "127.0.0.1:1")
    assert [p.name for p in tmp_path.iterdir()] == ["site.json"]


@pytest.mark.parametrize("file_set", DOCUMENTS)
def test_every_archived_attribute_is_polled_with_archive_settings(file_set):
    """hdbpp-es only receives archive events from an attribute with archive criteria."""
    instruments = devices_of(servers_of(file_set))
    entries = archive_entries()
    assert entries, "db/archiving.json archives nothing"
    for entry in entries:
        assert entry.startswith(f"tango://{PLACEHOLDER}/"), f"{entry}: write the host as {PLACEHOLDER}"
        name, _, options = entry.partition(";")
        assert options == "strategy=ALWAYS", entry
        device, _, attribute = name[len(f"tango://{PLACEHOLDER}/"):].rpartition("/")
        assert device.lower() in instruments, f"{entry}: {device} is not configured in {file_set}"
        block = instruments[device.lower()]
        polled = [p.lower() for p in block["properties"].get("polled_attr", [])[::2]]
        assert attribute.lower() in polled, f"{entry}: not in {device}'s polled_attr"
        props = {k.lower(): v for k, v in block.get("attribute_properties", {}).items()}.get(attribute.lower(), {})
        criteria = {"archive_period", "archive_abs_change", "archive_rel_change"} & set(props)
        assert criteria, f"{entry}: no archive_period/archive_abs_change/archive_rel_change"


def test_archiving_plan_reads_with_the_site_host():
    plan = archiving.read_plan(config.bundled("archiving.json"), "tango-db.example.org:10000")
    assert plan.manager and len(plan.entries) == len(archive_entries())
    assert all(e.attribute.startswith("tango://tango-db.example.org:10000/") for e in plan.entries)
    assert len({e.attribute for e in plan.entries}) == len(plan.entries), "an attribute is listed twice"
    other = archiving.read_plan(config.bundled("archiving.json"), "h:1", archiver="site/hdbpp/es-1")
    assert {e.archiver for e in other.entries} == {"site/hdbpp/es-1"}


@pytest.mark.parametrize("text, expected", [
    ("tango://h:10000/a/b/c/Attr", ("tango://h:10000/a/b/c/attr", "ALWAYS", 0)),
    ("tango://h:10000/a/b/c/x;strategy=RUN;ttl=48", ("tango://h:10000/a/b/c/x", "RUN", 48)),
])
def test_archive_entries_in_hdbpp_syntax(text, expected):
    entry = archiving.parse_entry(text, "es")
    assert (entry.attribute, entry.strategy, entry.ttl) == expected
    assert entry.short == expected[0].split("/", 3)[3]


@pytest.mark.parametrize("text", ["a/b/c/d", "tango://h:1/a/b/d", "tango://h:1/a/b/c/d;period=3"])
def test_archive_entries_that_hdbpp_would_not_take_are_refused(text):
    with pytest.raises(ValueError):
        archiving.parse_entry(text, "es")


def test_polled_attr_lists_names_and_periods():
    for file_set in DOCUMENTS:
        for device, block in devices_of(servers_of(file_set)).items():
            polled = block["properties"].get("polled_attr", [])
            assert len(polled) % 2 == 0, f"{file_set} {device}: polled_attr is name, period pairs"
            for period in polled[1::2]:
                assert period.isdigit() and int(period) > 0, f"{file_set} {device}: period {period!r}"


def test_site_template_names_real_instruments_not_simulators():
    for device, block in devices_of(servers_of("site-template")).items():
        url = block["properties"]["Url"][0]
        assert not url.startswith("virtual://"), f"{device}: {url} is a test bus"
        assert not any(host in url for host in LOOPBACK_HOSTS), f"{device}: {url} is a simulator's address"


def test_demo_devices_reach_simulators_on_loopback():
    for device, block in devices_of(servers_of("demo")).items():
        url = block["properties"]["Url"][0]
        assert url.startswith("virtual://") or any(h in url for h in LOOPBACK_HOSTS), f"{device}: {url}"



# -- the command line never lets a file name become an option, and fails in one line ----------
def plantds_config(tmp_path, *args: str):
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "TANGO_HOST": "127.0.0.1:1"}  # nothing listens there
    return subprocess.run([sys.executable, "-m", "plantds.server.cli", "config", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_file_named_like_an_option_is_a_file(tmp_path, monkeypatch):
    """Issue 9: `plantds config diff -- -w` handed "-w" to json2tango, which then wrote."""
    (tmp_path / "-w").write_text('{"servers": {}}')
    monkeypatch.chdir(tmp_path)
    out = config.resolved("-w", "h:10000", out_dir=tmp_path)
    assert out.is_absolute() and out == tmp_path / "-w"


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ("servers: {}", "is not a dsconfig JSON file"),
    (b"\xff\xfe", "is not a dsconfig JSON file"),
])
def test_bad_input_files_fail_in_one_line(tmp_path, content, message):
    if isinstance(content, bytes):
        (tmp_path / "-w").write_bytes(content)
    elif content is not None:
        (tmp_path / "-w").write_text(content)
    for action in ("load", "diff"):
        proc = plantds_config(tmp_path, action, "--", "-w")
        assert proc.returncode == 1, proc.stderr
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert "Traceback" not in proc.stderr


CHANGING_COMMANDS = {"On", "Off", "WriteValue", "SetSetpoint", "Init"}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_read_only_users_may_call_the_read_only_commands(name):
    """With Tango access control, a read-only client may run only State, Status and the class's
    AllowedAccessCmd: ReadValue must be there, no command that changes the instrument."""
    doc = DOCUMENTS[name]()
    classes = {cls for instances in doc["servers"].values() for classes in instances.values()
               for cls in classes}
    allowed = {cls: set(block["properties"]["AllowedAccessCmd"])
               for cls, block in doc["classes"].items()}
    assert classes - {"HdbEventSubscriber"} <= set(allowed)
    assert "ReadValue" in allowed["RotexHPSU"]
    for commands in allowed.values():
        assert {"State", "Status"} <= commands and not commands & CHANGING_COMMANDS


def test_the_demo_is_the_site_template_with_its_urls_on_the_simulators(tmp_path):
    """One source for db/: every label, limit, period and property the demo loads is the
    template's; only the instance name and the Urls differ (moved with --port-base)."""
    template = DOCUMENTS["site-template"]()
    for first_port, expected in ((demo.DEFAULT_SIMULATOR_PORT, (15020, 15021, 15022)), (21001, (21001, 21002, 21003))):
        files = demo.config_files(tmp_path, first_port)
        assert files == [tmp_path / "demo.json"]
        made = json.loads(files[0].read_text())
        instances = made["servers"]["PlantDS"]
        assert list(instances) == ["demo"]
        urls = {device: props["properties"].pop("Url")
                for devices in instances["demo"].values() for device, props in devices.items()}
        cpa, chiller, socketcand = expected
        assert urls == {"plant/compressor/1": [f"tcp://127.0.0.1:{cpa}"],
                        "plant/chiller/1": [f"socket://127.0.0.1:{chiller}"],
                        "plant/heatpump/1": [f"socketcand://127.0.0.1:{socketcand}/can0"]}
        site = json.loads(json.dumps(template["servers"]["PlantDS"]["site1"]))
        for devices in site.values():
            for props in devices.values():
                props["properties"].pop("Url")
        assert instances["demo"] == site
        assert made["classes"] == template["classes"]
