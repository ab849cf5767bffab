"""The real Tango database answers as a facility's does: the C++ DataBaseds on MariaDB, device
registration through tango.Database, and dsconfig's json2tango writing a configuration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tango

pytestmark = pytest.mark.integration

# json2tango's exit codes (dsconfig.utils): 0 nothing to change, 2 changes written.
JSON2TANGO_NO_CHANGES = 0
JSON2TANGO_WRITTEN = 2


def json2tango_write(path: Path) -> subprocess.CompletedProcess:
    beside_python = Path(sys.executable).with_name("json2tango")
    found = str(beside_python) if beside_python.exists() else shutil.which("json2tango")
    assert found, "dsconfig's json2tango is not installed"
    # json2tango saves the previous DB state as a temporary file: keep it in the test's folder.
    env = {**os.environ, "TMPDIR": str(path.parent)}
    return subprocess.run([found, "-w", "-n", str(path)], capture_output=True, text=True, env=env)


def test_cpp_databaseds_on_mariadb_answers(real_tango_db):
    db = tango.Database(*real_tango_db.split(":"))
    assert "sys/database/2" in db.get_info()
    database = tango.DeviceProxy(f"tango://{real_tango_db}/sys/database/2")
    # pytango-db's PyDatabaseds runs on cppTango 10; Debian's DataBaseds on cppTango 9.
    assert database.get_tango_lib_version() < 1000
    # Read by the stored procedures loaded into MariaDB from tango-db's schema.
    assert database.read_attribute("StoredProcedureRelease").value.startswith("release ")


def test_device_registered_with_properties_reads_back(real_tango_db):
    db = tango.Database()
    info = tango.DbDevInfo()
    info.name, info._class, info.server = "smoke/registered/1", "SmokeClass", "SmokeDS/registered"
    db.add_device(info)
    try:
        db.put_device_property(
            info.name,
            {"Url": ["tcp://127.0.0.1:15020"], "RefreshPeriod": ["0.5"], "Lines": ["a", "b"]},
        )
        props = db.get_device_property(info.name, ["Url", "RefreshPeriod", "Lines", "Missing"])
        assert list(props["Url"]) == ["tcp://127.0.0.1:15020"]
        assert list(props["RefreshPeriod"]) == ["0.5"]
        assert list(props["Lines"]) == ["a", "b"]
        assert list(props["Missing"]) == []
        assert db.get_device_info(info.name).class_name == "SmokeClass"
        assert info.name in db.get_device_name("SmokeDS/registered", "SmokeClass")
    finally:
        db.delete_server("SmokeDS/registered")


def test_json2tango_writes_configuration(real_tango_db, tmp_path):
    config = {
        "servers": {
            "SmokeJsonDS": {
                "json": {
                    "SmokeClass": {
                        "smoke/json/1": {
                            "properties": {"Url": ["socket://127.0.0.1:15021"]},
                            "attribute_properties": {
                                "Temperature": {"unit": ["K"], "max_alarm": ["320"]}
                            },
                        }
                    }
                }
            }
        },
        "classes": {"SmokeClass": {"properties": {"RefreshPeriod": ["1.0"]}}},
    }
    path = tmp_path / "smoke.json"
    path.write_text(json.dumps(config))
    db = tango.Database()
    try:
        first = json2tango_write(path)
        assert first.returncode == JSON2TANGO_WRITTEN, first.stderr

        assert db.get_device_info("smoke/json/1").ds_full_name == "SmokeJsonDS/json"
        url = db.get_device_property("smoke/json/1", "Url")["Url"]
        assert list(url) == ["socket://127.0.0.1:15021"]
        attr_props = db.get_device_attribute_property("smoke/json/1", "Temperature")["Temperature"]
        assert list(attr_props["unit"]) == ["K"]
        assert list(attr_props["max_alarm"]) == ["320"]
        class_props = db.get_class_property("SmokeClass", "RefreshPeriod")
        assert list(class_props["RefreshPeriod"]) == ["1.0"]

        # The database now holds exactly the file: a second run has nothing to do.
        again = json2tango_write(path)
        assert again.returncode == JSON2TANGO_NO_CHANGES, again.stderr
    finally:
        db.delete_server("SmokeJsonDS/json")
        db.delete_class_property("SmokeClass", ["RefreshPeriod"])
