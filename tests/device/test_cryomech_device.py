"""CryomechCPA end to end: PlantDS process ↔ real Tango DB ↔ CPA simulator on real sockets."""

from __future__ import annotations

import math

import pytest
import tango
from tango import AttrQuality, DevState

from plantds.devices.cryomech.simulator import CpaSimulator
from plantds.server.testing import run_plantds, state_is, wait_for

# 300 ms keeps tests quick; staleness (3 periods) then tolerates ~0.9 s of CPU starvation.
FAST = {"RefreshPeriod": 300, "Timeout": 0.5, "Retries": 1}
FC06_START = bytes([0x06, 0x00, 0x01, 0x00, 0x01])
# What a site keeps in the DB for the TCP device; the server must leave it as it is.
SITE_ATTRIBUTE_CONFIG = {
    "test/compressor/tcp": {
        "CoolantInTemperature": {"abs_change": ["0.2"]},
        "MotorCurrent": {"abs_change": ["0.3"], "archive_period": ["5000"]},
        "HoursOfOperation": {"label": ["Run hours"]},
    }
}


@pytest.fixture(scope="module")
def sims():
    tcp = CpaSimulator(start_s=0.4, stop_s=0.4).start()
    rtu = CpaSimulator(framer="rtu", start_s=0.4, stop_s=0.4).start()
    yield tcp, rtu
    tcp.stop()
    rtu.stop()


@pytest.fixture(scope="module")
def cpa(tango_host, sims, server_logs):
    tcp, rtu = sims
    devices = {
        "test/compressor/tcp": ("CryomechCPA", {"Url": tcp.url, **FAST}),
        "test/compressor/rtu": (
            "CryomechCPA",
            {"Url": rtu.url, "TemperatureUnit": "K", "PressureUnit": "psi", **FAST},
        ),
        # a second device on the same endpoint shares the link; ReadOnly refuses every command
        "test/compressor/ro": ("CryomechCPA", {"Url": tcp.url, "ReadOnly": "true", **FAST}),
    }
    with run_plantds(tango_host, devices, server_logs, attribute_properties=SITE_ATTRIBUTE_CONFIG) as proxies:
        for proxy in proxies.values():
            wait_for(state_is(proxy, DevState.OFF), what=f"{proxy.name()} OFF")
        yield proxies


@pytest.fixture(autouse=True)
def idle_compressor(sims, cpa):
    """Each test starts from an idle, fault-free, reachable panel in bar/degC."""
    yield
    for sim in sims:
        sim.set_online(True)
        sim.set_exception(None)
        sim.set_delay(0)
        sim.set_scales(pressure=1, temperature=1)
        sim.clear_faults()
        sim.set_warnings(0)
    proxy = cpa["test/compressor/tcp"]
    wait_for(lambda: proxy.state() != DevState.UNKNOWN, what="reachable again")
    if proxy.state() in (DevState.ON, DevState.MOVING):
        wait_for(state_is(proxy, DevState.ON))
        proxy.Off()
    wait_for(state_is(proxy, DevState.OFF), what="idle again")


def test_live_values_over_modbus_tcp(cpa):
    d = cpa["test/compressor/tcp"]
    assert d.state() == DevState.OFF
    assert "idle" in d.status().lower()
    assert d.Model == "CPA1114"
    assert d.SoftwareRevision == "2.154"
    assert d.PanelSerialNumber == 1234
    assert d.OperatingStateCode == 0
    assert d.OperatingState == "IdlingReadyToStart"  # a plain string label, no DevEnum
    assert d.get_attribute_config("OperatingState").data_type == tango.CmdArgType.DevString
    hp = d.read_attribute("HighPressure")
    assert hp.quality == AttrQuality.ATTR_VALID
    assert 5 < hp.value < 25  # equalised static pressure, bar
    assert d.get_attribute_config("HighPressure").unit == "bar"
    assert d.get_attribute_config("CoolantInTemperature").unit == "degC"
    assert list(d.Warnings or []) == [] and d.WarningCode == 0
    first = d.read_attribute("LastUpdate").value
    wait_for(lambda: d.read_attribute("LastUpdate").value > first, what="a newer refresh")
    assert d.RoundTripTime > 0


def test_rtu_over_tcp_and_configured_units(cpa, sims):
    tcp_dev, rtu_dev = cpa["test/compressor/tcp"], cpa["test/compressor/rtu"]
    assert rtu_dev.get_attribute_config("HighPressure").unit == "psi"
    assert rtu_dev.get_attribute_config("OilTemperature").unit == "K"
    # both panels idle at the same equalised charge: psi = bar × 14.5038, K = degC + 273.15
    assert rtu_dev.HighPressure == pytest.approx(tcp_dev.HighPressure * 14.5038, rel=0.05)
    assert rtu_dev.OilTemperature == pytest.approx(tcp_dev.OilTemperature + 273.15, abs=2)
    # default limits are the CPA1114 set points converted to the configured units (400 psig)
    assert float(rtu_dev.get_attribute_config("HighPressure").alarms.max_alarm) == pytest.approx(400, abs=0.01)


def test_panel_scale_change_does_not_change_reported_values(cpa, sims):
    d = cpa["test/compressor/tcp"]
    before = d.HighPressure, d.CoolantInTemperature
    sims[0].set_scales(pressure=0, temperature=0)  # someone switches the panel to psi / degF
    wait_for(lambda: d.PressureScale == "psi" and d.TemperatureScale == "degF", what="panel scales")
    assert d.HighPressure == pytest.approx(before[0], rel=0.02)
    assert d.CoolantInTemperature == pytest.approx(before[1], abs=0.5)
    assert d.get_attribute_config("HighPressure").unit == "bar"


def test_on_and_off_end_to_end(cpa):
    d = cpa["test/compressor/tcp"]
    d.On()
    assert d.state() in (DevState.MOVING, DevState.ON)
    wait_for(state_is(d, DevState.ON), what="running")
    assert d.OperatingState == "Running"
    assert d.LastCommandResult == "On: compressor Running (state 3)" or "Starting" in d.LastCommandResult
    assert d.CompressorRunning
    d.Off()
    assert d.state() in (DevState.MOVING, DevState.OFF)
    wait_for(state_is(d, DevState.OFF), what="stopped")


def test_start_that_the_panel_ignores_once_is_resent(cpa, sims):
    d = cpa["test/compressor/tcp"]
    sims[0].received_bytes(clear=True)
    sims[0].ignore_next_start(1)
    d.On()
    wait_for(state_is(d, DevState.ON), what="running after the resend")
    assert sims[0].received_bytes().count(FC06_START) == 2


def test_start_never_obeyed_is_reported_in_state_status_and_last_command_result(cpa, sims):
    d = cpa["test/compressor/tcp"]
    sims[0].ignore_next_start(5)
    try:
        d.On()  # the panel took the write: the command returns at once
        assert d.state() == DevState.MOVING and "waiting for the panel" in d.status()
        wait_for(state_is(d, DevState.ALARM), what="ALARM once the start was not obeyed")
        outcome = d.LastCommandResult
        assert outcome.startswith("On: start not obeyed") and "resent 1 time(s)" in outcome
        assert "panel still IdlingReadyToStart (state 0)" in outcome  # what the panel did instead
        assert d.status().startswith("start not obeyed")
        assert sims[0].received_bytes().count(FC06_START) >= 2
    finally:
        sims[0].ignore_next_start(0)
    d.Off()  # a new command clears the failed one
    wait_for(state_is(d, DevState.OFF), what="idle again")


def test_lockout_is_fault_and_on_is_refused_before_the_wire(cpa, sims):
    d = cpa["test/compressor/tcp"]
    sims[0].lockout()
    wait_for(state_is(d, DevState.FAULT), what="FAULT in lockout")
    assert "lockout menu" in d.status()
    sims[0].received_bytes(clear=True)
    with pytest.raises(tango.DevFailed) as info:
        d.On()
    assert info.value.args[0].reason == "PlantDS_CommandRefused"
    assert "panel" in info.value.args[0].desc
    assert b"\x06\x00\x01" not in sims[0].received_bytes()


def test_warnings_give_alarm_and_alarms_give_fault(cpa, sims):
    d = cpa["test/compressor/tcp"]
    sims[0].set_warnings(0x0001 | 0x0040)  # coolant in high, helium high
    wait_for(state_is(d, DevState.ALARM), what="ALARM on warnings")
    assert d.WarningCode == 0x41
    assert len(d.Warnings) == 2
    assert all(name in d.status() for name in d.Warnings)
    sims[0].set_warnings(0)
    wait_for(state_is(d, DevState.OFF), what="warnings cleared")
    sims[0].set_alarms(0x0200)  # low pressure low
    wait_for(state_is(d, DevState.FAULT), what="FAULT on an alarm")
    assert d.AlarmCode == 0x200 and len(d.Alarms) == 1


def test_read_only_device_refuses_commands_before_the_wire(cpa, sims):
    ro = cpa["test/compressor/ro"]
    sims[0].received_bytes(clear=True)
    for cmd in ("On", "Off"):
        with pytest.raises(tango.DevFailed) as info:
            ro.command_inout(cmd)
        assert info.value.args[0].reason == "PlantDS_ReadOnly"
        assert "ReadOnly" in info.value.args[0].desc
    assert b"\x06\x00\x01" not in sims[0].received_bytes()
    assert ro.state() == DevState.OFF


def test_link_loss_gives_invalid_and_unknown_then_recovers(cpa, sims):
    d = cpa["test/compressor/tcp"]
    errors = d.CommunicationErrors
    sims[0].set_online(False)
    wait_for(state_is(d, DevState.UNKNOWN), what="UNKNOWN when the panel is gone")
    assert "not reachable" in d.status()
    assert d.read_attribute("HighPressure").quality == AttrQuality.ATTR_INVALID
    assert d.read_attribute("Model").quality == AttrQuality.ATTR_INVALID
    with pytest.raises(tango.DevFailed) as info:
        d.On()
    assert info.value.args[0].reason == "PlantDS_NotReachable"
    sims[0].set_online(True)
    wait_for(state_is(d, DevState.OFF), what="recovery without restarting anything")
    assert d.read_attribute("HighPressure").quality == AttrQuality.ATTR_VALID
    assert d.CommunicationErrors > errors


def test_modbus_exception_replies_are_reported_and_recovered(cpa, sims):
    d = cpa["test/compressor/tcp"]
    sims[0].set_exception(0x04)
    wait_for(state_is(d, DevState.UNKNOWN), what="UNKNOWN on exception replies")
    assert "exception" in d.LastError.lower()
    sims[0].set_exception(None)
    wait_for(state_is(d, DevState.OFF), what="recovered")
    assert not math.isnan(d.HighPressure)


def test_init_applies_unit_and_db_attribute_edits(cpa):
    """What a site does in Jive: edit properties, run Init, see the effect without a restart."""
    d = cpa["test/compressor/ro"]
    db = tango.Database()
    celsius = d.OilTemperature
    assert d.get_attribute_config("OilTemperature").unit == "degC"
    try:
        db.put_device_property(d.name(), {"TemperatureUnit": ["K"]})
        db.put_device_attribute_property(d.name(), {"HighPressure": {"max_alarm": ["12.5"]}})
        d.Init()
        wait_for(state_is(d, DevState.ALARM, DevState.OFF), what="back after Init")
        cfg = d.get_attribute_config("OilTemperature")
        assert cfg.unit == "K"
        # the CPA1114 limit followed the unit: 125 degF = 324.82 K
        assert float(cfg.alarms.max_alarm) == pytest.approx(324.82, abs=0.01)
        assert d.OilTemperature == pytest.approx(celsius + 273.15, abs=1)
        assert float(d.get_attribute_config("HighPressure").alarms.max_alarm) == 12.5
        assert d.read_attribute("HighPressure").quality == AttrQuality.ATTR_ALARM
        # removing the DB's value brings back the default limit (400 psig in bar)
        db.delete_device_attribute_property(d.name(), {"HighPressure": ["max_alarm"]})
        d.Init()
        assert float(d.get_attribute_config("HighPressure").alarms.max_alarm) == pytest.approx(27.58, abs=0.01)
    finally:
        db.delete_device_property(d.name(), ["TemperatureUnit"])
        db.delete_device_attribute_property(d.name(), {"HighPressure": ["max_alarm"]})
        d.Init()
    assert d.get_attribute_config("OilTemperature").unit == "degC"


def test_site_attribute_configuration_survives_server_start(cpa):
    d = cpa["test/compressor/tcp"]
    db = tango.Database()
    for attr, props in SITE_ATTRIBUTE_CONFIG[d.name()].items():
        stored = db.get_device_attribute_property(d.name(), [attr])[attr]
        assert {k: list(v) for k, v in stored.items()} == props
    assert d.get_attribute_config("MotorCurrent").events.ch_event.abs_change == "0.3"
    assert d.get_attribute_config("MotorCurrent").events.arch_event.archive_period == "5000"
    assert d.get_attribute_config("HoursOfOperation").label == "Run hours"
    # and nothing else was written: the per-device defaults stay out of the DB
    assert dict(db.get_device_attribute_property(d.name(), ["HighPressure"])["HighPressure"]) == {}


def test_start_and_init_of_an_unchanged_configuration_write_nothing_to_the_db(cpa):
    """Defaults are applied in memory: no attribute-property writes, no history rows, neither
    when the device is created (DevRestart re-creates it as a server start does) nor at Init.
    (A device whose units differ from the first device of its class in the same server still
    has its converted limits applied through the DB: cppTango shares attribute defaults per
    class.)"""
    db = tango.Database()
    name = "test/compressor/tcp"

    def history() -> list[tuple[str, str, str]]:
        rows = db.get_device_attribute_property_history(name, "*", "*")
        return [(h.get_attribute_name(), h.get_name(), h.get_date()) for h in rows]

    before = history()
    device = cpa[name]
    device.Init()
    wait_for(lambda: device.state() != DevState.INIT, what="back after Init")
    tango.DeviceProxy(device.adm_name()).DevRestart(name)
    wait_for(lambda: device.state() == DevState.OFF, what="back after the re-creation")
    assert history() == before
    assert dict(db.get_device_attribute_property(name, ["HighPressure"])["HighPressure"]) == {}
    assert float(device.get_attribute_config("HighPressure").alarms.max_alarm) == pytest.approx(27.58, abs=0.01)
