"""An instrument fault reaches the control room as Tango shows it: attribute quality, State and
a State change event (State is polled, so any change is an event); clearing it at the
instrument brings everything back to normal."""

from __future__ import annotations

import pytest
import tango
from tango import AttrQuality, DevState

from plantds.devices.cryomech import protocol
from plantds.server.testing import wait_for

pytestmark = pytest.mark.integration

OIL_HIGH = 1 << protocol.WARNING_BITS.index("Oil temperature high")
HELIUM_HIGH = 1 << protocol.ALARM_BITS.index("Helium temperature high")


def test_compressor_warning_raises_alarm_state_and_event(compressor, subscribe):
    cpa, sim = compressor
    states = subscribe(cpa, "State", tango.EventType.CHANGE_EVENT)
    wait_for(lambda: states.values_since() == [DevState.OFF], what="the subscription's first State")

    sim.set_warnings(OIL_HIGH)
    wait_for(lambda: DevState.ALARM in states.values_since(), what="a State change event to ALARM")
    assert cpa.state() == DevState.ALARM
    assert "Oil temperature high" in cpa.status()
    # attributes are read from their own polling buffers: they follow within a polling cycle
    wait_for(lambda: cpa.read_attribute("WarningCode").quality == AttrQuality.ATTR_WARNING,
             what="WarningCode in WARNING")
    wait_for(lambda: list(cpa.Warnings or []) == ["Oil temperature high"], what="the warning named")

    sim.set_warnings(0)
    wait_for(lambda: states.values_since()[-1] == DevState.OFF, what="a State change event back to OFF")
    wait_for(lambda: cpa.read_attribute("WarningCode").quality == AttrQuality.ATTR_VALID,
             what="WarningCode valid again")


def test_compressor_error_trips_to_fault_until_cleared(compressor, subscribe):
    cpa, sim = compressor
    states = subscribe(cpa, "State", tango.EventType.CHANGE_EVENT)
    wait_for(lambda: states.values_since() == [DevState.OFF], what="the subscription's first State")

    sim.set_alarms(HELIUM_HIGH)
    wait_for(lambda: DevState.FAULT in states.values_since(), what="a State change event to FAULT")
    assert "Helium temperature high" in cpa.status()
    wait_for(lambda: cpa.read_attribute("AlarmCode").quality == AttrQuality.ATTR_ALARM,
             what="AlarmCode in ALARM")

    sim.clear_faults()
    wait_for(lambda: states.values_since()[-1] == DevState.OFF, what="a State change event back to OFF")
    wait_for(lambda: cpa.read_attribute("AlarmCode").quality == AttrQuality.ATTR_VALID,
             what="AlarmCode valid again")
