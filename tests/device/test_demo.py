"""``plantds demo`` as a user runs it: a child process, read through DeviceProxy, then Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import tango

from plantds.server.demo import INSTRUMENT_PORTS, SIMULATOR_PORTS, demo_devices
from plantds.server.testing import free_ports, wait_for


def _children_alive(tango_host: str) -> bool:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    port = tango_host.rsplit(":", 1)[1]
    return any(("PyDatabaseds" in line and f"--port {port}" in line) for line in out.splitlines())


@pytest.fixture
def demo(tmp_path):
    # Every port the demo opens moved to free ones: another demo, or the integration tests, may
    # run on this host meanwhile. TANGO_HOST names another DB: --port-base must win over it.
    base = free_ports(1 + SIMULATOR_PORTS)
    env = dict(os.environ, TANGO_HOST="127.0.0.1:1")
    log = tmp_path / "demo.out"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "plantds.server.cli", "demo", "--state-dir", str(tmp_path / "state"),
             "--port-base", str(base)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "Ready." in log.read_text() or proc.poll() is not None, timeout=120, what="demo ready")
        assert proc.poll() is None, log.read_text()
        yield base, proc, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_demo_serves_live_devices_and_stops_everything_on_ctrl_c(demo):
    base, proc, log = demo
    tango_host = f"127.0.0.1:{base}"
    banner = log.read_text()
    assert f"TANGO_HOST={tango_host}" in banner
    devices = demo_devices()
    assert "plant/compressor/1" in devices
    for name in devices:
        assert name in banner
        proxy = tango.DeviceProxy(f"tango://{tango_host}/{name}")
        wait_for(lambda: proxy.state() not in (tango.DevState.INIT, tango.DevState.UNKNOWN), what=f"{name} live")

    cpa = tango.DeviceProxy(f"tango://{tango_host}/plant/compressor/1")
    first = wait_for(lambda: cpa.read_attribute("HighPressure"),
                     lambda reading: reading.quality == tango.AttrQuality.ATTR_VALID, what="HighPressure valid")
    # configuration came from the site template through dsconfig
    assert cpa.get_attribute_config("HighPressure").label == "High pressure"
    assert cpa.get_property("Url")["Url"][0] == f"tcp://127.0.0.1:{base + 1}"  # moved with the port base
    # live: the acquisition time moves on
    wait_for(lambda: cpa.read_attribute("HighPressure").time.totime() > first.time.totime(), what="fresh values")

    # The banner's fault line, as an operator in training runs it: the compressor goes silent,
    # its device says so, and comes back.
    control = f"127.0.0.1:{base + 1 + INSTRUMENT_PORTS}"
    assert f"fault {control} offline" in banner
    fault = [sys.executable, "-m", "plantds.server.cli", "fault", control]
    assert subprocess.run([*fault, "offline"], capture_output=True, timeout=60).returncode == 0
    wait_for(lambda: cpa.state() == tango.DevState.UNKNOWN, what="compressor UNKNOWN while its simulator is offline")
    assert subprocess.run([*fault, "online"], capture_output=True, timeout=60).returncode == 0
    wait_for(lambda: cpa.state() not in (tango.DevState.UNKNOWN, tango.DevState.INIT), what="compressor back")

    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0
    assert "Demo stopped." in log.read_text()
    wait_for(lambda: not _children_alive(tango_host), what="the demo's Tango DB gone")
    with pytest.raises(tango.DevFailed):
        host, port = tango_host.split(":")
        tango.Database(host, int(port)).get_info()
