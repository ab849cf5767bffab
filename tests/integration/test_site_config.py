"""db/ is a site's configuration: ``plantds config`` loads it into the real Tango DB with dsconfig,
reports what a file would change; the archiving plan's entries name the site's TANGO_HOST."""

from __future__ import annotations

import json

import pytest
import tango

from plantds.server import config

pytestmark = pytest.mark.integration


def test_loaded_files_match_the_db(demo_plant):
    # The session loaded every file with `plantds config load`: diffing now finds nothing.
    for path in demo_plant.config_files:
        diff = demo_plant.config("diff", str(path))
        assert diff.returncode == 0, diff.stderr
        assert "the DB already matches" in diff.stdout, f"{path.name}: {diff.stdout}"


def test_diff_reports_what_an_operator_changed(shipped_config):
    device = "plant/compressor/1"
    tango.Database().put_device_property(device, {"RefreshPeriod": ["5000"]})
    diff = shipped_config.config("diff", str(shipped_config.config_files[0]))
    assert diff.returncode == 0, diff.stderr
    assert "changes pending" in diff.stdout
    # json2tango names the device and the property it would set back, with the file's value.
    assert device in diff.stdout and "RefreshPeriod" in diff.stdout and "1000" in diff.stdout


def test_archive_entries_name_this_database(demo_plant):
    archived = demo_plant.archived()
    assert archived, "db/archiving.json archives nothing"
    for entry in archived:
        assert entry.tango_host == demo_plant.tango_host, f"{entry.entry}: placeholder not filled in"
        assert entry.entry.endswith(";strategy=ALWAYS"), entry.entry
        assert entry.device in demo_plant.devices, f"{entry.entry} names a device the demo does not run"
    assert len({str(e).lower() for e in archived}) == len(archived), "an attribute is listed twice"


def test_site_template_loads_into_a_fresh_facility_db(fresh_tango_db, config_tool):
    """The template as a site first loads it: into an empty DB, then nothing left to change."""
    template = str(config.bundled("site-template.json"))
    site = fresh_tango_db
    first = config_tool("diff", template, tango_host=site)
    assert first.returncode == 0 and "changes pending" in first.stdout, first.stdout + first.stderr
    load = config_tool("load", template, tango_host=site)
    assert load.returncode == 0 and f"written to {site}" in load.stdout, load.stdout + load.stderr
    again = config_tool("diff", template, tango_host=site)
    assert "the DB already matches" in again.stdout, again.stdout

    servers = json.loads(config.bundled("site-template.json").read_text())["servers"]
    db = tango.Database(*site.split(":"))
    for server, instances in servers.items():
        for instance, classes in instances.items():
            for cls, devices in classes.items():
                for device in devices:
                    info = db.get_device_info(device)
                    assert (info.ds_full_name, info.class_name) == (f"{server}/{instance}", cls)


def test_load_keeps_json2tango_backup_only_where_asked(shipped_config, config_tool, tmp_path):
    """json2tango saves the DB's previous state on every write: ``plantds config load`` leaves
    nothing in TMPDIR, and keeps that file in ``--backup-dir`` when given."""
    device, demo_json = "plant/compressor/1", str(shipped_config.config_files[0])
    host, backups = shipped_config.tango_host, tmp_path / "backups"
    db = tango.Database()

    def left_in_tmpdir() -> list[str]:  # config_tool runs the command with TMPDIR=tmp_path
        return [p.name for p in tmp_path.iterdir() if p != backups]

    db.put_device_property(device, {"RefreshPeriod": ["5000"]})
    load = config_tool("load", demo_json, tango_host=host)
    assert load.returncode == 0 and f"written to {host}" in load.stdout, load.stdout + load.stderr
    assert left_in_tmpdir() == []
    assert config.BACKUP_LINE not in load.stdout + load.stderr  # it would name a deleted file

    db.put_device_property(device, {"RefreshPeriod": ["5000"]})
    load = config_tool("load", "--backup-dir", str(backups), demo_json, tango_host=host)
    assert load.returncode == 0 and f"written to {host}" in load.stdout, load.stdout + load.stderr
    assert left_in_tmpdir() == []
    [saved] = backups.glob("dsconfig-*.json")
    assert f"{config.BACKUP_LINE}{saved}" in load.stdout
    previous = json.loads(saved.read_text())["servers"]["PlantDS"]["demo"]["CryomechCPA"][device]
    assert previous["properties"]["RefreshPeriod"] == ["5000"]
