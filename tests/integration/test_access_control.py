"""Tango access control with Debian's TangoAccessControl (issue 9): a read-only user reads the
attributes and calls the commands db/ grants in ``AllowedAccessCmd`` (State, Status, ReadValue);
every write and every command that changes an instrument is refused, and nothing reaches the wire.

Its own real Tango DB (access control applies to a whole control system, so not the session's):
``deploy/tangodb.sh`` brings up MariaDB + DataBaseds, TangoAccessControl runs on the same MariaDB,
the PlantDS server serves one device per class against simulators on free loopback ports. The
restricted client is a separate process, which fetches its rights when it connects.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
import tango

from plantds.devices.coleparmer.simulator import ChillerSimulator
from plantds.devices.cryomech.simulator import CpaSimulator
from plantds.devices.rotex.simulator import HpsuSimulator
from plantds.server import demo
from plantds.server.processes import plantds_server, stop_process
from plantds.server.testing import wait_for

from .conftest import private_tango_db

pytestmark = pytest.mark.integration

TAC = "/usr/lib/tango/TangoAccessControl"
TAC_DEVICE = "sys/access_control/1"
DEVICES = {"CryomechCPA": "test/compressor/tac", "ColeParmerChiller": "test/chiller/tac",
           "RotexHPSU": "test/heatpump/tac"}
OWN_ID = 0x680
# The client's user, as cppTango reports it. The same user runs the server, so the rights are
# narrowed only once the server is up: a server whose user may only read cannot even start
# (Tango refuses its own configuration calls to the database), and a connection keeps the
# rights it was opened with.
READER = pwd.getpwuid(os.getuid()).pw_name

# Run by the restricted client: every call, and what Tango made of it.
CLIENT = r"""
import json, sys, tango
results = {}
def attempt(name, call):
    try:
        call()
        results[name] = "ok"
    except tango.DevFailed as exc:
        results[name] = "refused: " + exc.args[0].reason
cpa, chiller, hp = (tango.DeviceProxy(name) for name in sys.argv[1:4])
for proxy in (cpa, chiller, hp):
    name = proxy.name()
    attempt(f"{name} State", proxy.state)
    attempt(f"{name} Status", proxy.status)
    attempt(f"{name} read", lambda: proxy.read_attributes(proxy.get_attribute_list()))
attempt("ReadValue", lambda: hp.ReadValue("t_hs"))
attempt("cpa On", cpa.On)
attempt("cpa Off", cpa.Off)
attempt("chiller On", chiller.On)
attempt("chiller Off", chiller.Off)
attempt("chiller SetSetpoint", lambda: chiller.SetSetpoint(30.0))
attempt("chiller write Setpoint", lambda: chiller.write_attribute("Setpoint", 30.0))
attempt("hp On", hp.On)
attempt("hp Off", hp.Off)
attempt("hp WriteValue", lambda: hp.WriteValue(["heat_slope", "0.8"]))
attempt("hp write heat_slope", lambda: hp.write_attribute("heat_slope", 0.8))
attempt("hp write mode_01", lambda: hp.write_attribute("mode_01", 1))
attempt("cpa Init", cpa.Init)
print(json.dumps(results))
"""


def shipped_allowed_commands() -> dict[str, list[str]]:
    doc = demo.demo_config()
    return {cls: block["properties"]["AllowedAccessCmd"] for cls, block in doc["classes"].items()}


@pytest.fixture
def plant(tmp_path):
    if not os.access(TAC, os.X_OK):
        pytest.fail(f"{TAC} missing: run deploy/tangodb.sh install", pytrace=False)
    state = tmp_path / "db"
    sims = {"CryomechCPA": CpaSimulator(port=0), "ColeParmerChiller": ChillerSimulator(port=0),
            "RotexHPSU": HpsuSimulator(socketcand_port=0, drift=False)}
    with private_tango_db(state) as tango_host:
        host, port = tango_host.split(":")
        db = tango.Database(host, int(port))
        for sim in sims.values():
            sim.start()
        urls = {"CryomechCPA": sims["CryomechCPA"].url,
                "ColeParmerChiller": sims["ColeParmerChiller"].url,
                "RotexHPSU": sims["RotexHPSU"].urls[0]}
        for cls, name in DEVICES.items():
            db.add_device(_info(name, cls, "PlantDS/tac"))
            db.put_device_property(name, {"Url": [urls[cls]]})
        for cls, commands in shipped_allowed_commands().items():
            db.put_class_property(cls, {"AllowedAccessCmd": commands})
        db.add_device(_info(TAC_DEVICE, "TangoAccessControl", "TangoAccessControl/1"))
        env = {**os.environ, "TANGO_HOST": tango_host, "MYSQL_USER": "tango",
               "MYSQL_PASSWORD": "tango",
               "MYSQL_HOST": f"127.0.0.1:{(state / 'mysql_port').read_text().strip()}"}
        tac = subprocess.Popen([TAC, "1", "-ORBendPoint", "giop:tcp:127.0.0.1:0"], env=env,
                               stdout=open(tmp_path / "tac.log", "wb"), stderr=subprocess.STDOUT)
        try:
            access = tango.DeviceProxy(f"tango://{tango_host}/{TAC_DEVICE}")
            wait_for(lambda: _answers(access), timeout=30, what="TangoAccessControl up")
            db.put_property("CtrlSystem", {"Services": [f"AccessControl/tango:{TAC_DEVICE}"]})
            with plantds_server("tac", list(DEVICES.values()), tango_host,
                                tmp_path / "PlantDS-tac.log"):
                for name in DEVICES.values():
                    proxy = tango.DeviceProxy(f"tango://{tango_host}/{name}")
                    wait_for(lambda: proxy.state() not in (tango.DevState.INIT,
                                                          tango.DevState.UNKNOWN),
                             timeout=60, what=f"{name} connected")
                grant_read_only(state, READER)
                yield tango_host, sims
        finally:
            stop_process(tac)
            for sim in sims.values():
                sim.stop()


def grant_read_only(state: Path, user: str) -> None:
    """Read access to every device for ``user``, from any address: the rows
    AddAddressForUser/AddDeviceForUser write. Written here because TangoAccessControl 9.3's own
    INSERTs leave out the `updated` column, which MariaDB's strict mode refuses."""
    rows = (f"INSERT INTO access_address VALUES ('{user}', '*.*.*.*', 'FF.FF.FF.FF', NOW(), NOW());"
            f"INSERT INTO access_device VALUES ('{user}', '*/*/*', 'read', NOW(), NOW());")
    subprocess.run(["mariadb", "--no-defaults", f"--socket={state / 'mariadbd.sock'}",
                    "--user=root", "tango", "-e", rows], check=True, timeout=60)


def _info(name: str, cls: str, server: str) -> tango.DbDevInfo:
    info = tango.DbDevInfo()
    info.name, info._class, info.server = name, cls, server
    return info


def _answers(proxy: tango.DeviceProxy) -> bool:
    try:
        proxy.ping()
        return True
    except tango.DevFailed:
        return False


def test_a_read_only_user_reads_and_changes_nothing(plant, tmp_path):
    tango_host, sims = plant
    chiller_sets = lambda: [f for f in sims["ColeParmerChiller"].requests if f[3] >= 0x80]
    heat_pump_writes = lambda: [f for f in sims["RotexHPSU"].frames_from(OWN_ID) if f[0] & 0x0F == 0]
    cpa_writes = lambda: _modbus_writes(sims["CryomechCPA"].received_bytes())
    before = (len(chiller_sets()), len(heat_pump_writes()), len(cpa_writes()))

    done = subprocess.run([sys.executable, "-c", CLIENT, *DEVICES.values()],
                          env={**os.environ, "TANGO_HOST": tango_host}, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(results, indent=1))

    allowed = {name: outcome for name, outcome in results.items()
               if name.endswith(("State", "Status", "read")) or name == "ReadValue"}
    assert set(allowed.values()) == {"ok"}, allowed
    refused = {name: outcome for name, outcome in results.items() if name not in allowed}
    assert all(outcome.startswith("refused: API_ReadOnlyMode") for outcome in refused.values()), \
        refused
    assert (len(chiller_sets()), len(heat_pump_writes()), len(cpa_writes())) == before


def _modbus_writes(stream: bytes) -> list[bytes]:
    """Modbus TCP requests in ``stream`` whose function code writes (5, 6, 15, 16, 22, 23)."""
    writes, i = [], 0
    while i + 8 <= len(stream):
        length = int.from_bytes(stream[i + 4:i + 6], "big")
        if stream[i + 7] in (5, 6, 15, 16, 22, 23):
            writes.append(stream[i:i + 6 + length])
        i += 6 + length
    return writes
