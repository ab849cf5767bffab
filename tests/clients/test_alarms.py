"""PANIC's PyAlarm on db/alarms.json, as shipped, watching the simulated plant: an injected
instrument fault activates the matching alarm; clearing it lets the alarm reset."""

from __future__ import annotations

import json
import time

import pytest
import tango

pytest.importorskip("panic", reason="the [alarms] extra (panic, fandango) is not installed")

from plantds.alarms import active_alarms, alarm_tags, pyalarms  # noqa: E402
from plantds.server.config import bundled  # noqa: E402
from plantds.server.testing import wait_for  # noqa: E402

ALARMS = bundled("alarms.json")
DEVICE = "plant/alarms/1"
ACTIVATION_DEADLINE_S = 10.0  # the requirement
# AutoReset (10 s in the file) after the condition clears, plus PyAlarm's polling.
RESET_DEADLINE_S = 40.0


@pytest.fixture(scope="module")
def pyalarm(tango_host, plant, server_logs):
    with pyalarms(ALARMS, tango_host, server_logs):
        # PyAlarm evaluates once it has built its alarm attributes
        wait_for(lambda: active_alarms(DEVICE) is not None, timeout=60, what="PyAlarm answering")
        yield DEVICE


def test_the_file_declares_every_alarm_with_a_description_and_a_severity():
    tags = alarm_tags(ALARMS)[DEVICE]
    props = json.loads(ALARMS.read_text())["servers"]["PyAlarm"]["plant"]["PyAlarm"][DEVICE]["properties"]
    for key in ("AlarmDescriptions", "AlarmSeverities"):
        assert [entry.split(":", 1)[0] for entry in props[key]] == tags
    assert {entry.split(":", 1)[1] for entry in props["AlarmSeverities"]} <= {"ALARM", "WARNING"}
    for prefix in ("COMPRESSOR", "CHILLER", "HEATPUMP"):
        assert f"{prefix}_COMM_LOSS" in tags


def test_every_formula_evaluates_on_the_plant(pyalarm):
    """Each tag is an attribute of the PyAlarm device; none of the formulas fails to evaluate
    (attribute names, State constants and the arithmetic all resolve)."""
    proxy = tango.DeviceProxy(DEVICE)
    tags = alarm_tags(ALARMS)[DEVICE]
    wait_for(lambda: all(proxy.read_attribute(tag).value is not None for tag in tags), timeout=30,
             what="every alarm evaluated")
    assert list(proxy.FailedAlarms or ()) == []
    assert set(active_alarms(DEVICE)) == set(), "the healthy plant raises no alarm"


def _activated_within(tags: set[str], deadline: float) -> float:
    started = time.monotonic()
    wait_for(lambda: tags <= set(active_alarms(DEVICE)), timeout=deadline, what=f"{sorted(tags)} active")
    return time.monotonic() - started


def test_a_compressor_alarm_bit_activates_and_resets(pyalarm, sims):
    assert "COMPRESSOR_ALARM_BITS" not in active_alarms(DEVICE)
    sims["cpa"].set_alarms(0x1)
    try:
        took = _activated_within({"COMPRESSOR_ALARM_BITS", "COMPRESSOR_FAULT"}, ACTIVATION_DEADLINE_S)
        print(f"compressor alarm bit -> PyAlarm active in {took:.1f} s")
    finally:
        sims["cpa"].clear_faults()
    wait_for(lambda: not {"COMPRESSOR_ALARM_BITS", "COMPRESSOR_FAULT"} & set(active_alarms(DEVICE)),
             timeout=RESET_DEADLINE_S, what="compressor alarms reset")


def test_a_heat_pump_error_code_activates_and_resets(pyalarm, sims):
    sims["heatpump"].set_error(42)
    try:
        took = _activated_within({"HEATPUMP_ERROR"}, ACTIVATION_DEADLINE_S)
        print(f"heat pump error code -> PyAlarm active in {took:.1f} s")
    finally:
        sims["heatpump"].set_error(0)
    wait_for(lambda: "HEATPUMP_ERROR" not in active_alarms(DEVICE), timeout=RESET_DEADLINE_S,
             what="HEATPUMP_ERROR reset")


def test_a_silent_compressor_raises_communication_loss_and_resets(pyalarm, sims, plant):
    sims["cpa"].set_online(False)
    try:
        wait_for(lambda: plant["compressor"].state().name == "UNKNOWN", timeout=20, what="compressor UNKNOWN")
        took = _activated_within({"COMPRESSOR_COMM_LOSS"}, ACTIVATION_DEADLINE_S)
        print(f"compressor UNKNOWN -> PyAlarm active in {took:.1f} s")
        # the values it can no longer read raise nothing
        assert not {"COMPRESSOR_ALARM_BITS", "COMPRESSOR_WARNING_BITS"} & set(active_alarms(DEVICE))
    finally:
        sims["cpa"].set_online(True)
    wait_for(lambda: "COMPRESSOR_COMM_LOSS" not in active_alarms(DEVICE), timeout=RESET_DEADLINE_S,
             what="COMPRESSOR_COMM_LOSS reset")
