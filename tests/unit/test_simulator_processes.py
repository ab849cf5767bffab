"""Simulators as processes and as long-running servers (issue 9): every simulator CLI stops on
SIGTERM, and none keeps what its clients left behind."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading

import pytest

from plantds.devices.coleparmer.simulator import ChillerSimulator
from plantds.devices.rotex.simulator import RECEIVED_KEPT, HpsuSimulator
from plantds.server.testing import wait_for

SIMULATORS = {
    "cpa": ["--port", "0"],
    "chiller": ["--port", "0"],
    "heatpump": ["--socketcand-port", "0", "--elm-port", "0"],
}


@pytest.mark.parametrize("name", SIMULATORS)
def test_simulator_cli_stops_on_sigterm(name):
    proc = subprocess.Popen(
        [sys.executable, "-m", "plantds.server.cli", "simulate", name, *SIMULATORS[name]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        banner = proc.stdout.readline()  # printed once the simulator listens
        assert "127.0.0.1" in banner, proc.stderr.read() if proc.poll() is not None else banner
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_chiller_simulator_forgets_closed_connections():
    with ChillerSimulator(port=0) as sim:
        for _ in range(20):
            socket.create_connection(("127.0.0.1", sim.port)).close()
        wait_for(lambda: sim.connections == 0, what="closed client sockets released")
        wait_for(lambda: not [t for t in threading.enumerate() if t.name == "chiller-sim-client"],
                 what="serving threads ended")


def test_heat_pump_simulator_remembers_a_bounded_number_of_frames():
    """It kept every client frame for ever: ~20 frames/s in a demo that runs for weeks."""
    sim = HpsuSimulator()
    for _ in range(RECEIVED_KEPT + 100):
        sim.inject(None, 0x680, bytes(7))
    assert len(sim.received) == RECEIVED_KEPT
