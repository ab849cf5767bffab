"""The site configuration files in db/ and the placeholder ``plantds config`` fills in (pure:
files only, no Tango DB)."""

from __future__ import annotations

import json
import tempfile

import pytest

from plantds.server import config, demo

PLACEHOLDER = config.TANGO_HOST_PLACEHOLDER
# The file sets a site loads together: the demo plant (as `plantds demo` loads it) and the template.
FILE_SETS = {
    "demo": ("demo.json", "archiving.json"),
    "site-template": ("site-template.json",),
}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def merged_servers(names: tuple[str, ...]) -> dict:
    servers: dict = {}
    for name in names:
        for server, instances in json.loads(config.bundled(name).read_text())["servers"].items():
            servers.setdefault(server, {}).update(instances)
    return servers


def devices_of(servers: dict, exclude_class: str | None = None) -> dict[str, dict]:
    """device name (lower case) → its dsconfig block."""
    return {
        device.lower(): block
        for instances in servers.values()
        for classes in instances.values()
        for cls, devices in classes.items()
        if cls != exclude_class
        for device, block in devices.items()
    }


def archive_entries(servers: dict) -> list[str]:
    return [
        entry
        for block in devices_of(servers).values()
        for entry in block.get("properties", {}).get("AttributeList", [])
    ]


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


@pytest.mark.parametrize("file_set", FILE_SETS)
def test_every_archived_attribute_is_polled_with_archive_settings(file_set):
    """hdbpp-es only receives archive events from a polled attribute with archive criteria."""
    servers = merged_servers(FILE_SETS[file_set])
    instruments = devices_of(servers, exclude_class="HdbEventSubscriber")
    entries = archive_entries(servers)
    assert entries, f"{file_set}: no AttributeList entries"
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


def test_polled_attr_lists_names_and_periods():
    for file_set, names in FILE_SETS.items():
        for device, block in devices_of(merged_servers(names), exclude_class="HdbEventSubscriber").items():
            polled = block["properties"].get("polled_attr", [])
            assert len(polled) % 2 == 0, f"{file_set} {device}: polled_attr is name, period pairs"
            for period in polled[1::2]:
                assert period.isdigit() and int(period) > 0, f"{file_set} {device}: period {period!r}"


def test_site_template_names_real_instruments_not_simulators():
    for device, block in devices_of(merged_servers(FILE_SETS["site-template"]), "HdbEventSubscriber").items():
        url = block["properties"]["Url"][0]
        assert not url.startswith("virtual://"), f"{device}: {url} is a test bus"
        assert not any(host in url for host in LOOPBACK_HOSTS), f"{device}: {url} is a simulator's address"


def test_demo_devices_reach_simulators_on_loopback():
    for device, block in devices_of(merged_servers(FILE_SETS["demo"]), "HdbEventSubscriber").items():
        url = block["properties"]["Url"][0]
        assert url.startswith("virtual://") or any(h in url for h in LOOPBACK_HOSTS), f"{device}: {url}"



def test_demo_port_base_moves_every_simulator_url_and_nothing_else(tmp_path):
    shipped = json.loads(config.bundled("demo.json").read_text())
    default = demo.config_files(tmp_path)
    assert default == [config.bundled(name) for name in demo.CONFIG_FILES] and not list(tmp_path.iterdir())

    moved_files = demo.config_files(tmp_path, first_port=21001)
    assert moved_files[1:] == default[1:]
    moved = json.loads(moved_files[0].read_text())
    urls = {device: props["properties"]["Url"]
            for devices in moved["servers"]["PlantDS"]["demo"].values() for device, props in devices.items()}
    assert urls == {"plant/compressor/1": ["tcp://127.0.0.1:21001"],
                    "plant/chiller/1": ["socket://127.0.0.1:21002"],
                    "plant/heatpump/1": ["socketcand://127.0.0.1:21003/can0"]}
    for content in (shipped, moved):
        for devices in content["servers"]["PlantDS"]["demo"].values():
            for props in devices.values():
                props["properties"].pop("Url")
    assert moved == shipped
