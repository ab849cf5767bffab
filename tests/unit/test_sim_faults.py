"""Faults without Python: ``plantds simulate … --fault`` at start and ``--control-port`` with
``plantds fault`` at run time, one vocabulary for the three simulators; each fault checked where
a client sees it (the real drivers on the real sockets)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys

import pytest

from plantds.devices.coleparmer import simulator as chiller_sim
from plantds.devices.coleparmer.driver import NcDriver
from plantds.devices.cryomech import simulator as cpa_sim
from plantds.devices.cryomech.driver import CpaDriver
from plantds.devices.rotex import simulator as hpsu_sim
from plantds.server import sim_faults
from plantds.server.simulator import Simulator
from plantds.server.links import CommError

CLI = [sys.executable, "-m", "plantds.server.cli"]


@contextlib.contextmanager
def simulator_process(*args: str):
    """``plantds simulate ARGS``: (its instrument Url, its control address, the process)."""
    proc = subprocess.Popen([*CLI, "simulate", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any(line.startswith("Fault control at") for line in lines):
            line = proc.stdout.readline()
            assert line, f"simulator exited: {proc.stderr.read()}"
            lines.append(line)
        url = re.search(r"(tcp|socket)://127\.0\.0\.1:\d+", "".join(lines))[0]
        control = re.search(r"Fault control at (\S+):", "".join(lines))[1]
        yield url, control, proc, lines
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()


def plantds_fault(address: str, *faults: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "fault", address, *faults], capture_output=True, text=True, timeout=60)


def test_compressor_faults_from_the_command_line_and_at_run_time():
    with simulator_process("cpa", "--port", "0", "--control-port", "0", "--fault", "warnings 0x4") as (url, control, proc, banner):
        assert any("Fault applied: warnings 0x4" in line for line in banner)
        driver = CpaDriver(url, timeout=1.0, retries=0)
        try:
            driver.connect()
            assert driver.refresh()["WarningCode"] == 0x4

            done = plantds_fault(control, "offline")
            assert done.returncode == 0 and done.stdout.strip() == "ok: offline", done
            with pytest.raises(CommError):
                driver.refresh()
            assert plantds_fault(control, "online", "alarms 0x2").returncode == 0
            driver.close()  # offline cut the connection: connect again, as the worker does
            driver.connect()
            values = driver.refresh()
            assert values["AlarmCode"] == 0x2 and values["WarningCode"] == 0x4

            # A wrong line is refused in one line; the simulator keeps running and serving.
            bad = plantds_fault(control, "melt", "delay fast")
            assert bad.returncode == 1 and "unknown fault 'melt'" in bad.stderr
            assert "delay: could not convert string to float: 'fast'" in bad.stderr
            assert "Traceback" not in bad.stderr and proc.poll() is None
            assert driver.refresh()["AlarmCode"] == 0x2
        finally:
            driver.close()


def test_a_bad_fault_at_start_is_one_line_and_no_simulator():
    done = subprocess.run([*CLI, "simulate", "chiller", "--port", "0", "--fault", "noise"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "usage: noise PROBABILITY" in done.stderr and "Traceback" not in done.stderr


def test_no_control_port_is_said_plainly():
    done = plantds_fault("127.0.0.1:1", "offline")
    assert done.returncode == 1 and "start the simulator with --control-port" in done.stderr


def test_chiller_faults_over_the_control_port():
    with chiller_sim.ChillerSimulator(port=0) as sim, \
            contextlib.closing(sim_faults.ControlServer(sim, 0)) as control:
        driver = NcDriver(sim.url, family="Polystat", timeout=0.5, retries=0)
        try:
            driver.connect()
            assert "chiller faulted" not in driver.refresh()["StatusFlags"]
            assert sim_faults.send(control.address, ["fault 'chiller faulted'"]) == ["ok: fault 'chiller faulted'"]
            assert "chiller faulted" in driver.refresh()["StatusFlags"]
            assert sim_faults.send(control.address, ["offline"]) == ["ok: offline"]
            with pytest.raises(CommError):
                driver.refresh()
            [reply] = sim_faults.send(control.address, ["fault 'no such bit'"])
            assert reply.startswith("error: fault:")
        finally:
            driver.close()


def test_heat_pump_faults_over_the_control_port():
    with hpsu_sim.HpsuSimulator(socketcand_port=0, elm_port=None) as sim, \
            contextlib.closing(sim_faults.ControlServer(sim, 0)) as control:
        assert sim_faults.send(control.address, ["error 3", "delay 0.05", "mute t_hs"]) == [
            "ok: error 3", "ok: delay 0.05", "ok: mute t_hs"]
        assert sim.value("error") == 3 and sim.latency_s == 0.05
        [reply] = sim_faults.send(control.address, ["mute no_such_command"])
        assert reply.startswith("error: mute:")


def test_every_simulator_is_one_kind_with_the_common_faults():
    for cls in (cpa_sim.CpaSimulator, chiller_sim.ChillerSimulator, hpsu_sim.HpsuSimulator):
        assert issubclass(cls, Simulator)  # abstract methods: a missing common fault fails here
        assert not set(sim_faults.COMMON) & set(cls.FAULTS)  # one meaning per name
        assert set(cls.faults()) == set(sim_faults.COMMON) | set(cls.FAULTS)


@pytest.mark.parametrize("make", [
    lambda: cpa_sim.CpaSimulator(port=0),
    lambda: chiller_sim.ChillerSimulator(port=0),
    lambda: hpsu_sim.HpsuSimulator(socketcand_port=0, elm_port=None),
], ids=["cpa", "chiller", "heatpump"])
def test_the_common_faults_by_name_on_every_simulator(make):
    with make() as sim:
        assert sim.fault("delay 0.25") == "delay 0.25"
        assert sim.fault("offline") == "offline" and sim.fault("online") == "online"
        assert sim.fault("drop") == "drop"
        with pytest.raises(ValueError, match="unknown fault 'melt'"):
            sim.fault("melt")
        with pytest.raises(ValueError, match="delay: .*'-1'|must be >= 0"):
            sim.fault("delay -1")
        assert sim.urls and sim.url in sim.banner()


@pytest.mark.parametrize("framer", ["socket", "rtu"])
def test_a_corrupt_compressor_reply_is_refused_never_a_value(framer):
    """RTU replies get a wrong CRC, Modbus TCP ones a protocol id that is not 0: the client
    refuses the reply (a CommError for that read) and the next reply is good again."""
    with cpa_sim.CpaSimulator(port=0, framer=framer) as sim:
        driver = CpaDriver(sim.url, timeout=0.5, retries=0)
        try:
            driver.connect()
            sim.set_warnings(0x4)
            assert driver.refresh()["WarningCode"] == 0x4
            sim.fault("corrupt 1")
            with pytest.raises(CommError):
                driver.refresh()
            assert driver.refresh()["WarningCode"] == 0x4
        finally:
            driver.close()
