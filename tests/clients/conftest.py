"""Client tests: the facility's tools (sequences, PyAlarm, bluesky, Taurus) against one PlantDS
process serving a compressor, a chiller and a heat pump on their simulators (real sockets), on
the session's PyDatabaseds (tests/conftest.py)."""

from __future__ import annotations


import pytest
import tango

from plantds.devices.coleparmer.simulator import ChillerSimulator
from plantds.devices.cryomech.simulator import CpaSimulator
from plantds.devices.rotex.simulator import HpsuSimulator
from plantds.server.demo import DEMO_INSTANCE, demo_config
from plantds.server.testing import run_plantds, wait_for

# The demo plant's names, so db/alarms.json and the other shipped files apply as they are.
COMPRESSOR, CHILLER, HEATPUMP = "plant/compressor/1", "plant/chiller/1", "plant/heatpump/1"
FAST = {"RefreshPeriod": 300, "Timeout": 0.5, "Retries": 1}


@pytest.fixture(scope="session")
def sims():
    started = {
        "cpa": CpaSimulator(start_s=0.4, stop_s=0.4).start(),
        # A slow bath (tau 10 min) that starts at its set point: at set point at once, and far
        # from any new set point for as long as a test needs.
        "chiller": ChillerSimulator("Polystat", precision=0.1, setpoint=20.0, ambient=20.0,
                                    time_constant_s=600.0),
        "heatpump": HpsuSimulator(socketcand_port=0, latency_s=0.01, drift=False).start(),
    }
    started["chiller"].start()
    yield started
    for sim in started.values():
        sim.stop()


@pytest.fixture(scope="session")
def plant(tango_host, sims, server_logs) -> dict[str, tango.DeviceProxy]:
    """The three devices by role (compressor, chiller, heatpump), live."""
    hp_url = next(u for u in sims["heatpump"].urls if u.startswith("socketcand://"))
    devices = {
        COMPRESSOR: ("CryomechCPA", {"Url": sims["cpa"].url, **FAST}),
        CHILLER: ("ColeParmerChiller", {"Url": sims["chiller"].url, "Family": "Polystat",
                                        "SetpointHoldTime": 1.0, "SetpointTolerance": 0.5, **FAST}),
        HEATPUMP: ("RotexHPSU", {"Url": hp_url, **FAST, "RefreshPeriod": 500, "SlowRefreshPeriod": 60000}),
    }
    # The heat pump's error limit as the demo configures it in the DB (max_alarm: any code >= 1).
    demo = demo_config()["servers"]["PlantDS"][DEMO_INSTANCE]
    error_config = demo["RotexHPSU"]["plant/heatpump/1"]["attribute_properties"]["error"]
    limits = {HEATPUMP: {"error": {"max_alarm": error_config["max_alarm"]}}}
    with run_plantds(tango_host, devices, server_logs, attribute_properties=limits) as proxies:
        for name, proxy in proxies.items():
            proxy.set_timeout_millis(20000)
            wait_for(lambda: proxy.state() not in (tango.DevState.INIT, tango.DevState.UNKNOWN),
                     timeout=30, what=f"{name} live")
        yield {"compressor": proxies[COMPRESSOR], "chiller": proxies[CHILLER], "heatpump": proxies[HEATPUMP]}
