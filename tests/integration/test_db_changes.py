"""The Tango DB, not the code, decides alarm limits, event thresholds, archiving, units, polling
and device behaviour: an edit made as Jive or dsconfig makes it takes effect at the device's
Init (attribute configuration, device properties, units) or at a server restart (polling, and
everything else too), and loading the shipped file then Init puts everything back. The DB only
ever holds what the site put there."""

from __future__ import annotations

import time

import pytest
import tango
from tango import AttrQuality, DevState

from plantds.server.testing import valid_value, wait_for

pytestmark = pytest.mark.integration

COMPRESSOR = "plant/compressor/1"
STEADY = "CoolantInTemperature"  # constant while the compressor is idle
LIMITS = ("min_alarm", "min_warning", "max_warning", "max_alarm")
# The unit change checked below, with the conversions written out here rather than taken from
# the code under test: degC → K and bar → psi.
NEW_UNITS = {"TemperatureUnit": "K", "PressureUnit": "psi"}
PSI_PER_BAR = 14.503773773
TEMPERATURES = ("CoolantInTemperature", "CoolantOutTemperature", "OilTemperature", "HeliumTemperature")
PRESSURES = ("LowPressure", "LowPressureAverage", "HighPressure", "HighPressureAverage", "DeltaPressureAverage")
# attribute → (unit before, unit after, value before → value after)
CONVERTED = {
    **{name: ("degC", "K", lambda c: c + 273.15) for name in TEMPERATURES},
    **{name: ("bar", "psi", lambda b: b * PSI_PER_BAR) for name in PRESSURES},
}
NOT_SPECIFIED = "Not specified"


def quality(proxy: tango.DeviceProxy, attribute: str) -> AttrQuality:
    return proxy.read_attribute(attribute).quality


def steady_value(proxy: tango.DeviceProxy) -> float:
    """The idle compressor's STEADY value, once valid (a loaded machine can leave it stale)."""
    return wait_for(lambda: valid_value(proxy, STEADY), lambda v: v is not None, what=f"{STEADY} valid")


def limits(proxy: tango.DeviceProxy, attribute: str) -> dict[str, str]:
    alarms = proxy.get_attribute_config(attribute).alarms
    return {key: getattr(alarms, key) for key in LIMITS}


def test_alarm_and_warning_limits_come_from_the_db_at_init(shipped_config, compressor):
    plant, (cpa, _) = shipped_config, compressor
    value = steady_value(cpa)
    db = tango.Database()

    db.put_device_attribute_property(COMPRESSOR, {STEADY: {"max_alarm": [str(value - 1)]}})
    plant.init_device(COMPRESSOR)
    wait_for(lambda: quality(cpa, STEADY) == AttrQuality.ATTR_ALARM, what=f"{STEADY} in ALARM")

    db.put_device_attribute_property(COMPRESSOR, {STEADY: {"max_alarm": [str(value + 30)],
                                                           "min_alarm": [str(value + 1)]}})
    plant.init_device(COMPRESSOR)
    assert float(cpa.get_attribute_config(STEADY).alarms.max_alarm) == pytest.approx(value + 30)
    wait_for(lambda: quality(cpa, STEADY) == AttrQuality.ATTR_ALARM, what=f"{STEADY} in ALARM (low)")

    db.put_device_attribute_property(COMPRESSOR, {STEADY: {"min_alarm": [str(value - 10)],
                                                           "max_warning": [str(value - 1)]}})
    plant.init_device(COMPRESSOR)
    wait_for(lambda: quality(cpa, STEADY) == AttrQuality.ATTR_WARNING, what=f"{STEADY} in WARNING")

    # Removed from the DB: the built-in CPA1114 limit (85 degF) applies again.
    db.delete_device_attribute_property(COMPRESSOR, {STEADY: ["max_warning"]})
    plant.init_device(COMPRESSOR)
    assert float(limits(cpa, STEADY)["max_warning"]) == pytest.approx((85 - 32) / 1.8, abs=0.01)
    wait_for(lambda: quality(cpa, STEADY) == AttrQuality.ATTR_VALID, what=f"{STEADY} valid without max_warning")

    # A server restart applies a DB edit as well.
    db.put_device_attribute_property(COMPRESSOR, {STEADY: {"max_alarm": [str(value - 1)]}})
    plant.restart_server()
    wait_for(lambda: quality(cpa, STEADY) == AttrQuality.ATTR_ALARM, what=f"{STEADY} in ALARM after restart")

    plant.load_shipped_config()
    plant.init_device(COMPRESSOR)
    wait_for(lambda: quality(cpa, STEADY) == AttrQuality.ATTR_VALID, what=f"{STEADY} valid again")
    shipped = db.get_device_attribute_property(COMPRESSOR, STEADY)[STEADY]
    assert {k: float(v) for k, v in limits(cpa, STEADY).items()} == {
        k: pytest.approx(float(shipped[k][0])) for k in LIMITS
    }


def test_jive_attribute_config_applies_at_once_and_survives_a_restart(shipped_config, compressor):
    """Jive's attribute editor writes through the running device, which stores it in the DB."""
    plant, (cpa, _) = shipped_config, compressor
    value = steady_value(cpa)
    cfg = cpa.get_attribute_config(STEADY)
    cfg.alarms.max_alarm = str(value - 1)
    cpa.set_attribute_config(cfg)
    # clients read the polling buffer: the new limit shows from the next polling cycle on
    wait_for(lambda: quality(cpa, STEADY) == AttrQuality.ATTR_ALARM, what=f"{STEADY} in ALARM")
    stored = tango.Database().get_device_attribute_property(COMPRESSOR, STEADY)[STEADY]
    assert float(stored["max_alarm"][0]) == pytest.approx(value - 1)

    plant.restart_server()
    wait_for(lambda: quality(cpa, STEADY) == AttrQuality.ATTR_ALARM, what=f"{STEADY} in ALARM after restart")
    plant.init_device(COMPRESSOR)
    wait_for(lambda: quality(cpa, STEADY) == AttrQuality.ATTR_ALARM, what=f"{STEADY} in ALARM after Init")


def test_change_event_threshold_comes_from_the_db_at_init(shipped_config, compressor, subscribe):
    """abs_change decides which changes of the motor current, while the compressor starts,
    become change events."""
    plant, (cpa, _) = shipped_config, compressor
    db = tango.Database()

    db.delete_device_attribute_property(COMPRESSOR, {"MotorCurrent": ["abs_change", "rel_change"]})
    plant.init_device(COMPRESSOR)
    with pytest.raises(tango.DevFailed) as refused:
        cpa.subscribe_event("MotorCurrent", tango.EventType.CHANGE_EVENT, lambda _: None)
    assert refused.value.args[0].reason == "API_EventPropertiesNotSet"

    def start_events(abs_change: str) -> list[float]:
        """Values of the change events showing the compressor running (motor current over 1 A)."""
        db.put_device_attribute_property(COMPRESSOR, {"MotorCurrent": {"abs_change": [abs_change]}})
        plant.init_device(COMPRESSOR)
        assert float(cpa.get_attribute_config("MotorCurrent").events.ch_event.abs_change) == float(abs_change)
        log = subscribe(cpa, "MotorCurrent", tango.EventType.CHANGE_EVENT)
        subscribed = time.time()
        # A new subscription may get the next polled value whatever it is: let that be an idle one.
        wait_for(lambda: cpa.attribute_history("MotorCurrent", 1)[0].time.totime() > subscribed,
                 what="MotorCurrent polled since the subscription")
        cpa.On()
        wait_for(lambda: cpa.state() == DevState.ON, what="compressor running")
        # From 0.2 A idle to 16 A running: two polls of the running current, so that the first
        # one's event, if any, has arrived.
        wait_for(lambda: all(h.value > 10 for h in cpa.attribute_history("MotorCurrent", 2)),
                 what="MotorCurrent polled twice while running")
        values = [v for v in log.values_since() if v > 1]
        cpa.Off()
        wait_for(lambda: cpa.state() == DevState.OFF, what="compressor idle again")
        return values

    assert start_events("100") == []
    assert start_events("0.5")

    plant.load_shipped_config()
    plant.init_device(COMPRESSOR)
    assert float(cpa.get_attribute_config("MotorCurrent").events.ch_event.abs_change) == 0.2


def test_unit_change_applies_at_init_to_values_and_limits(shipped_config, compressor):
    """TemperatureUnit/PressureUnit, then Init: units, values and the built-in CPA1114 limits
    all follow, and the DB keeps exactly what the site wrote (no defaults written back)."""
    plant, (cpa, sim) = shipped_config, compressor
    db = tango.Database()
    # A site that uses the built-in limits: none of its own in the DB for these attributes
    # (limits a site writes are used as written, in the unit it wrote them for).
    db.delete_device_attribute_property(COMPRESSOR, {name: list(LIMITS) for name in CONVERTED})
    site_config = plant.attribute_properties(COMPRESSOR)
    plant.init_device(COMPRESSOR)
    before = {name: limits(cpa, name) for name in CONVERTED}
    for name, (unit, _, _) in CONVERTED.items():
        assert cpa.get_attribute_config(name).unit == unit, name
        assert before[name]["max_alarm"] != NOT_SPECIFIED, name
    assert plant.attribute_properties(COMPRESSOR) == site_config

    db.put_device_property(COMPRESSOR, {key: [unit] for key, unit in NEW_UNITS.items()})
    plant.init_device(COMPRESSOR)
    for name, (_, unit, convert) in CONVERTED.items():
        assert cpa.get_attribute_config(name).unit == unit, name
        after = limits(cpa, name)
        for key in LIMITS:
            if before[name][key] == NOT_SPECIFIED:
                assert after[key] == NOT_SPECIFIED, (name, key)
            else:
                assert float(after[key]) == pytest.approx(convert(float(before[name][key])), abs=0.1), (name, key)
        # The simulator's model is in degC and bar; the device shows the panel up to a cycle late,
        # and right after Init the value is INVALID (None) until the first refresh.
        wait_for(
            lambda: valid_value(cpa, name),
            lambda value: abs(value - convert(sim.values()[name])) < 0.5,
            what=f"{name} in {unit}",
        )
    assert plant.attribute_properties(COMPRESSOR) == site_config
    assert cpa.state() == DevState.OFF  # values and limits in the same unit: nothing out of range

    plant.load_shipped_config()
    plant.init_device(COMPRESSOR)
    for name, (unit, _, _) in CONVERTED.items():
        assert cpa.get_attribute_config(name).unit == unit, name


def test_start_and_init_leave_the_site_configuration_as_loaded(shipped_config):
    """Defaults are applied, never stored: after a server start and an Init of every device the
    DB holds what the shipped files put there, neither more nor less."""
    plant = shipped_config
    plant.load_shipped_config()
    loaded = {device: plant.attribute_properties(device) for device in plant.devices}
    assert all(loaded.values()), loaded

    plant.restart_server()
    for device in plant.devices:
        assert plant.attribute_properties(device) == loaded[device], f"{device}, after a server start"
    for device in plant.devices:
        plant.init_device(device)
        assert plant.attribute_properties(device) == loaded[device], f"{device}, after Init"
    for path in plant.config_files:
        diff = plant.config("diff", str(path))
        assert "the DB already matches" in diff.stdout, diff.stdout + diff.stderr


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
    plant.init_device(COMPRESSOR)
    wait_for(lambda: cpa.state() == DevState.OFF, what="compressor idle after Init")
    with pytest.raises(tango.DevFailed) as refused:
        cpa.On()
    assert refused.value.args[0].reason == "PlantDS_ReadOnly"

    plant.load_shipped_config()
    plant.init_device(COMPRESSOR)
    wait_for(lambda: cpa.state() == DevState.OFF, what="compressor idle after Init")
    cpa.On()
    wait_for(lambda: cpa.state() == DevState.ON, what="compressor running")
