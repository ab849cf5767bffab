"""The Tango DB, not the code, decides alarm limits, event thresholds, polling and device
behaviour: an edit made as Jive or dsconfig makes it takes effect when the device is restarted
(Jive's "Restart device"), initialised (device properties) or its server restarted (polling),
and loading the shipped file puts everything back."""

from __future__ import annotations

import pytest
import tango
from tango import AttrQuality, DevState

from plantds.server.testing import wait_for

pytestmark = pytest.mark.integration

COMPRESSOR = "plant/compressor/1"
STEADY = "CoolantInTemperature"  # constant while the compressor is idle


def quality(proxy: tango.DeviceProxy, attribute: str) -> AttrQuality:
    return proxy.read_attribute(attribute).quality


def test_alarm_and_warning_limits_come_from_the_db(shipped_config, compressor):
    plant, (cpa, _) = shipped_config, compressor
    value = cpa.read_attribute(STEADY).value
    assert quality(cpa, STEADY) == AttrQuality.ATTR_VALID
    db = tango.Database()

    db.put_device_attribute_property(COMPRESSOR, {STEADY: {"max_alarm": [str(value - 1)]}})
    plant.restart_device(COMPRESSOR)
    wait_for(lambda: quality(cpa, STEADY) == AttrQuality.ATTR_ALARM, what=f"{STEADY} in ALARM")

    db.put_device_attribute_property(COMPRESSOR, {STEADY: {"max_alarm": [str(value + 30)],
                                                           "min_alarm": [str(value + 1)]}})
    plant.restart_device(COMPRESSOR)
    assert float(cpa.get_attribute_config(STEADY).alarms.max_alarm) == pytest.approx(value + 30)
    wait_for(lambda: quality(cpa, STEADY) == AttrQuality.ATTR_ALARM, what=f"{STEADY} in ALARM (low)")

    db.put_device_attribute_property(COMPRESSOR, {STEADY: {"min_alarm": [str(value - 10)],
                                                           "max_warning": [str(value - 1)]}})
    plant.restart_device(COMPRESSOR)
    wait_for(lambda: quality(cpa, STEADY) == AttrQuality.ATTR_WARNING, what=f"{STEADY} in WARNING")

    plant.load_shipped_config()
    plant.restart_device(COMPRESSOR)
    wait_for(lambda: quality(cpa, STEADY) == AttrQuality.ATTR_VALID, what=f"{STEADY} valid again")


def test_jive_attribute_config_applies_at_once_and_survives_a_restart(shipped_config, compressor):
    """Jive's attribute editor writes through the running device, which stores it in the DB."""
    plant, (cpa, _) = shipped_config, compressor
    value = cpa.read_attribute(STEADY).value
    cfg = cpa.get_attribute_config(STEADY)
    cfg.alarms.max_alarm = str(value - 1)
    cpa.set_attribute_config(cfg)
    assert quality(cpa, STEADY) == AttrQuality.ATTR_ALARM
    stored = tango.Database().get_device_attribute_property(COMPRESSOR, STEADY)[STEADY]
    assert float(stored["max_alarm"][0]) == pytest.approx(value - 1)

    plant.restart_server()
    assert quality(cpa, STEADY) == AttrQuality.ATTR_ALARM


def test_change_event_threshold_comes_from_the_db(shipped_config):
    plant = shipped_config
    cpa = plant.proxy(COMPRESSOR)
    tango.Database().delete_device_attribute_property(COMPRESSOR, {"MotorCurrent": ["abs_change", "rel_change"]})
    plant.restart_device(COMPRESSOR)
    with pytest.raises(tango.DevFailed) as refused:
        cpa.subscribe_event("MotorCurrent", tango.EventType.CHANGE_EVENT, lambda _: None)
    assert refused.value.args[0].reason == "API_EventPropertiesNotSet"

    plant.load_shipped_config()
    plant.restart_device(COMPRESSOR)
    event_id = cpa.subscribe_event("MotorCurrent", tango.EventType.CHANGE_EVENT, lambda _: None)
    cpa.unsubscribe_event(event_id)


def test_polling_comes_from_the_db_at_server_start(shipped_config):
    plant = shipped_config
    cpa = plant.proxy(COMPRESSOR)
    db = tango.Database()
    polled = list(db.get_device_property(COMPRESSOR, "polled_attr")["polled_attr"])
    pairs = dict(zip(polled[::2], polled[1::2]))
    assert pairs["motorcurrent"] == "1000" and "hoursofoperation" in pairs
    pairs["motorcurrent"] = "3000"
    del pairs["hoursofoperation"]
    db.put_device_property(COMPRESSOR, {"polled_attr": [x for pair in pairs.items() for x in pair]})

    plant.restart_server()
    assert cpa.get_attribute_poll_period("MotorCurrent") == 3000
    assert not cpa.is_attribute_polled("HoursOfOperation")

    plant.load_shipped_config()
    plant.restart_server()
    assert cpa.get_attribute_poll_period("MotorCurrent") == 1000
    assert cpa.is_attribute_polled("HoursOfOperation")


def test_device_property_edit_applies_on_init(shipped_config, compressor):
    plant, (cpa, _) = shipped_config, compressor
    db = tango.Database()
    db.put_device_property(COMPRESSOR, {"ReadOnly": ["true"]})
    cpa.Init()
    wait_for(lambda: cpa.state() == DevState.OFF, what="compressor idle after Init")
    with pytest.raises(tango.DevFailed) as refused:
        cpa.On()
    assert refused.value.args[0].reason == "PlantDS_ReadOnly"

    plant.load_shipped_config()
    cpa.Init()
    wait_for(lambda: cpa.state() == DevState.OFF, what="compressor idle after Init")
    cpa.On()
    wait_for(lambda: cpa.state() == DevState.ON, what="compressor running")
