"""ColeParmerChiller end to end: PlantDS process ↔ real Tango DB ↔ NC chiller simulators on
real sockets (socket:// URLs, the way a terminal server is reached)."""

from __future__ import annotations

import math

import pytest
import tango
from tango import AttrQuality, AttrWriteType, DevState

from plantds.devices.coleparmer import protocol
from plantds.devices.coleparmer.simulator import ChillerSimulator
from plantds.server.testing import run_plantds, state_is, wait_for

# 300 ms keeps tests quick; staleness (3 periods) then tolerates ~0.9 s of CPU starvation.
# The slow reads (limits, PID) are made rare, so only a write can explain a fresh slow value.
FAST = {"RefreshPeriod": 300, "Timeout": 0.5, "Retries": 1, "SlowRefreshPeriod": 3_600_000}
SERIAL_MODE_HINT = "serial mode is enabled on the front panel"
SET_SETPOINT = 0xF0
POLY, RTE, MERLIN, MERLIN_RO, FAHRENHEIT = (
    "test/chiller/poly", "test/chiller/rte", "test/chiller/merlin", "test/chiller/ro", "test/chiller/degf",
)


def set_frames(sim: ChillerSimulator, command: int = SET_SETPOINT) -> list[bytes]:
    return [r for r in sim.requests if r[3] == command]


@pytest.fixture(scope="module")
def sims():
    started = {
        "poly": ChillerSimulator("Polystat", precision=0.1, setpoint=20.0),
        "rte": ChillerSimulator("RTE", precision=0.1, setpoint=20.0),
        "merlin": ChillerSimulator("Merlin", precision=1, setpoint=15.0),
        "degf": ChillerSimulator("ThermoFlex", setpoint=68.0, temperature_unit="degF"),
    }
    for sim in started.values():
        sim.start()
    yield started
    for sim in started.values():
        sim.stop()


@pytest.fixture(scope="module")
def chillers(tango_host, sims, server_logs):
    devices = {
        POLY: ("ColeParmerChiller", {"Url": sims["poly"].url, "Family": "Polystat", **FAST}),
        RTE: ("ColeParmerChiller", {"Url": sims["rte"].url, "Family": "RTE", "Baudrate": 19200, **FAST}),
        MERLIN: ("ColeParmerChiller", {"Url": sims["merlin"].url, "Family": "Merlin", **FAST}),
        # a second device on the same port shares the link; ReadOnly refuses every write
        MERLIN_RO: ("ColeParmerChiller", {"Url": sims["merlin"].url, "Family": "Merlin", "ReadOnly": "true", **FAST}),
        FAHRENHEIT: ("ColeParmerChiller", {"Url": sims["degf"].url, "Family": "ThermoFlex", **FAST}),
    }
    # The site narrows the set point range in the DB; the code's default is -50…200 °C.
    narrowed = {POLY: {"Setpoint": {"min_value": ["-20"], "max_value": ["190"]}}}
    with run_plantds(tango_host, devices, server_logs, attribute_properties=narrowed) as proxies:
        for name, proxy in proxies.items():
            expected = DevState.FAULT if name == FAHRENHEIT else DevState.ON
            wait_for(state_is(proxy, expected), what=f"{name} {expected}")
        yield proxies


@pytest.fixture(autouse=True)
def running_chillers(sims, chillers):
    """Each test starts from running, fault-free, talking chillers at 0.1 precision, 20 °C."""
    yield
    for sim in sims.values():
        sim.set_serial_mode(True)
        sim.clear()
    sims["poly"].set_precision(0.1)
    for name in (POLY, RTE):
        proxy = chillers[name]
        wait_for(lambda: proxy.state() not in (DevState.UNKNOWN, DevState.FAULT, DevState.ALARM),
                 what=f"{name} reachable and fault-free again")
        if proxy.state() != DevState.ON:
            proxy.On()
        wait_for(lambda: proxy.Precision == 0.1, what=f"{name} at 0.1 precision")
        if proxy.Setpoint != 20.0:
            proxy.Setpoint = 20.0
        wait_for(state_is(proxy, DevState.ON), what=f"{name} running")


def test_live_values_and_status(chillers, sims):
    d = chillers[POLY]
    assert d.state() == DevState.ON
    assert d.Setpoint == 20.0
    temperature = d.read_attribute("InternalTemperature")
    assert temperature.quality == AttrQuality.ATTR_VALID
    assert temperature.value == pytest.approx(sims["poly"].value("InternalTemperature"), abs=0.15)
    assert "Chiller running" in d.status() and "set point 20.0 degC" in d.status()
    assert list(d.StatusFlags) == ["chiller running"] and d.StatusRaw == "01 00"
    assert d.UnitOn is True and d.Precision == 0.1 and d.TemperatureUnit == "degC"
    assert d.HighTemperatureFault == sims["poly"].value("HighTemperatureFault")
    assert d.CoolIntegral == sims["poly"].value("CoolIntegral")
    config = d.get_attribute_config("Setpoint")
    assert config.unit == "degC" and config.writable == AttrWriteType.READ_WRITE
    assert (config.min_value, config.max_value) == ("-20", "190")  # from the DB
    first = d.read_attribute("LastUpdate").value
    wait_for(lambda: d.read_attribute("LastUpdate").value > first, what="a newer refresh")


def test_each_family_offers_only_what_it_has(chillers):
    offered = {name: set(chillers[name].get_attribute_list()) for name in (POLY, RTE, MERLIN)}
    for name, family in ((POLY, "Polystat"), (RTE, "RTE"), (MERLIN, "Merlin")):
        fam = protocol.family(family)
        every_parameter = {n for f in protocol.FAMILIES.values() for n in f.parameters}
        every_boolean = {n for f in protocol.FAMILIES.values() for n in f.booleans}
        assert set(fam.parameters) | set(fam.booleans) <= offered[name]
        assert not (every_parameter - set(fam.parameters)) & offered[name], name
        assert not (every_boolean - set(fam.booleans)) & offered[name], name
    # the manuals' differences, spelled out
    assert {"ExternalTemperature", "HeatIntegral", "LowTemperatureFault"} <= offered[POLY]
    assert not {"ExternalTemperature", "HeatIntegral", "LowTemperatureFault", "PumpOn"} & offered[MERLIN]
    assert {"PumpOn", "CompressorOn", "HeaterOn"} <= offered[RTE] and "HighTemperatureFault" not in offered[RTE]
    merlin = chillers[MERLIN]
    assert merlin.get_attribute_config("InternalTemperature").writable == AttrWriteType.READ
    assert merlin.get_attribute_config("CoolIntegral").writable == AttrWriteType.READ_WRITE
    assert merlin.Precision == 1 and merlin.Setpoint == 15.0


def test_rte_booleans_and_flags(chillers):
    d = chillers[RTE]
    assert d.UnitOn and d.PumpOn
    assert {"unit on", "pump on"} <= set(d.StatusFlags)
    d.Setpoint = 30.0  # the bath is now 10 degrees too cold: the heater comes on
    wait_for(lambda: d.HeaterOn, what="the heater on at the next status read")
    assert not d.CompressorOn and "heater on" in d.StatusFlags


@pytest.mark.parametrize(
    "precision,value,frame",
    [
        (0.1, 30.0, "CA 00 01 F0 02 01 2C DF"),
        (0.1, -10.5, "CA 00 01 F0 02 FF 97 76"),
        (0.01, 20.0, "CA 00 01 F0 02 07 D0 35"),
        (1, 30.0, "CA 00 01 F0 02 00 1E EE"),
    ],
)
def test_setpoint_write_puts_the_manuals_bytes_on_the_wire(chillers, sims, precision, value, frame):
    d, sim = chillers[POLY], sims["poly"]
    sim.set_precision(precision)
    wait_for(lambda: d.Precision == precision, what=f"precision {precision} seen by the device")
    sim.requests.clear()
    d.Setpoint = value
    assert set_frames(sim) == [bytes.fromhex(frame)]
    # the job completes only after the refresh that follows it: the echo is read back at once
    assert d.Setpoint == value and sim.value("Setpoint") == value


def test_set_setpoint_command_takes_the_same_path(chillers, sims):
    d, sim = chillers[POLY], sims["poly"]
    sim.requests.clear()
    assert d.SetSetpoint(25.0) == 25.0
    assert set_frames(sim) == [bytes.fromhex("CA 00 01 F0 02 00 FA 12")]
    assert d.Setpoint == 25.0


def test_clamped_write_reports_the_value_the_chiller_stored(chillers, sims):
    d, sim = chillers[POLY], sims["poly"]
    high = sim.temperature_range[1]
    with pytest.raises(tango.DevFailed) as info:
        d.Setpoint = high + 30.0
    err = info.value.args[0]
    assert err.reason == "PlantDS_NotVerified"
    assert f"stored {high:g} instead of {high + 30:g}" in err.desc
    assert d.Setpoint == high == sim.value("Setpoint")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 195.0, -30.0, 250.0])
def test_out_of_range_and_non_numbers_never_reach_the_wire(chillers, sims, value):
    d, sim = chillers[POLY], sims["poly"]
    sim.requests.clear()
    for write in (lambda: d.write_attribute("Setpoint", value), lambda: d.SetSetpoint(value)):
        with pytest.raises(tango.DevFailed) as info:
            write()
        # Tango's own min/max_value check (write_attribute) or ours (the command and NaN)
        reasons = {err.reason for err in info.value.args}
        assert reasons & {"PlantDS_OutOfRange", "API_WAttrOutsideLimit"}, info.value
    assert set_frames(sim) == []
    assert d.Setpoint == 20.0


def test_command_path_names_the_db_limit(chillers):
    with pytest.raises(tango.DevFailed) as info:
        chillers[POLY].SetSetpoint(195.0)  # within the code's range, above the DB's 190
    assert info.value.args[0].reason == "PlantDS_OutOfRange"
    assert "maximum 190" in info.value.args[0].desc and "nothing was sent" in info.value.args[0].desc


def test_pid_write_uses_its_own_range_and_precision(chillers, sims):
    d, sim = chillers[POLY], sims["poly"]
    with pytest.raises(tango.DevFailed):
        d.HeatIntegral = 12.0  # above the manual's 9.99
    sim.requests.clear()
    d.HeatIntegral = 1.23
    assert set_frames(sim, 0xF2) == [protocol.set_request(0xF2, 1.23, 2)]
    assert d.HeatIntegral == 1.23


def test_slow_values_are_read_right_after_a_write(chillers, sims):
    d, sim = chillers[POLY], sims["poly"]
    sim.requests.clear()  # the slow reads a write of an earlier test called for are done first
    wait_for(lambda: len(sim.requests) >= 8, what="two refresh cycles")
    before = d.HighTemperatureWarning
    # someone changes the limit at the front panel: the slow reads are an hour apart here
    sim.respond(protocol.set_request(0xE0, before - 10.0, 1))
    sim.requests.clear()
    wait_for(lambda: len(sim.requests) >= 8, what="two refresh cycles")
    assert d.HighTemperatureWarning == before
    assert not [r for r in sim.requests if r[3] == 0x60]  # not read meanwhile
    try:
        d.Setpoint = 21.0
        wait_for(lambda: d.HighTemperatureWarning == before - 10.0,
                 what="every limit and PID term read again in the cycle after the write")
    finally:
        sim.respond(protocol.set_request(0xE0, before, 1))


def test_read_only_device_refuses_writes_and_commands_before_the_wire(chillers, sims):
    ro, sim = chillers[MERLIN_RO], sims["merlin"]
    sim.requests.clear()
    for attempt in (lambda: ro.write_attribute("Setpoint", 10.0), lambda: ro.SetSetpoint(10.0),
                    ro.Off, ro.On, lambda: ro.write_attribute("CoolIntegral", 1.0)):
        with pytest.raises(tango.DevFailed) as info:
            attempt()
        assert info.value.args[0].reason == "PlantDS_ReadOnly"
    assert not [r for r in sim.requests if r[3] >= 0x80]  # no set and no On/Off frame
    assert ro.state() == DevState.ON and ro.Setpoint == 15.0


def test_off_and_on(chillers, sims):
    d, sim = chillers[RTE], sims["rte"]
    sim.requests.clear()
    d.Off()
    # the reply to Set On/Off is in the snapshot before the command returns
    assert d.state() == DevState.OFF and "Chiller stopped" in d.status()
    assert bytes.fromhex("CA 00 01 81 08 00 02 02 02 02 02 02 02 67") in sim.requests
    assert d.UnitOn is False and d.LastCommandResult == "Off: done: chiller reports unit off"
    wait_for(lambda: d.PumpOn is False, what="the pump off at the next status read")
    d.On()
    assert d.state() == DevState.ON and d.UnitOn is True and sim.running


def test_fault_bit_gives_fault_and_the_unit_refuses_to_start(chillers, sims):
    d, sim = chillers[POLY], sims["poly"]
    sim.set_fault("chiller faulted")
    wait_for(state_is(d, DevState.FAULT), what="FAULT on a fault bit")
    assert "chiller faulted" in d.status() and "clear the fault" in d.status()
    with pytest.raises(tango.DevFailed) as info:
        d.On()
    assert info.value.args[0].reason == "PlantDS_CommandRefused"
    assert "chiller faulted" in info.value.args[0].desc
    sim.clear()
    wait_for(state_is(d, DevState.OFF), what="stopped once the fault is cleared")
    d.On()
    assert d.state() == DevState.ON


def test_warning_bit_gives_alarm(chillers, sims):
    d, sim = chillers[RTE], sims["rte"]
    sim.set_warning("high temp warn")
    wait_for(state_is(d, DevState.ALARM), what="ALARM on a warning bit")
    assert "high temp warn" in d.status() and "high temp warn" in d.StatusFlags
    assert d.UnitOn  # a warning lets the chiller run
    sim.clear()
    wait_for(state_is(d, DevState.ON), what="ON once the warning clears")


def test_silence_gives_unknown_with_the_serial_mode_hint_then_recovers(chillers, sims):
    d, sim = chillers[POLY], sims["poly"]
    errors = d.CommunicationErrors
    sim.set_serial_mode(False)
    # stale first (a silent request takes Timeout × tries), then the refresh fails with the reason
    wait_for(lambda: SERIAL_MODE_HINT in d.status(), what="the serial-mode hint in Status")
    assert len(d.status().splitlines()) <= 2
    assert d.state() == DevState.UNKNOWN
    assert d.read_attribute("InternalTemperature").quality == AttrQuality.ATTR_INVALID
    assert d.read_attribute("StatusFlags").quality == AttrQuality.ATTR_INVALID
    with pytest.raises(tango.DevFailed) as info:
        d.Setpoint = 22.0
    assert info.value.args[0].reason == "PlantDS_NotReachable"
    sim.set_serial_mode(True)
    wait_for(state_is(d, DevState.ON), what="recovery without restarting anything")
    assert d.read_attribute("InternalTemperature").quality == AttrQuality.ATTR_VALID
    assert d.CommunicationErrors > errors
    assert d.Setpoint == 20.0


def test_corrupted_replies_never_become_values(chillers, sims):
    d, sim = chillers[POLY], sims["poly"]
    errors = d.CommunicationErrors
    # one corrupt reply: the request is resent, so values stay valid and right
    for _ in range(10):
        sim.requests.clear()
        sim.corrupt_next(1)
        wait_for(lambda: len(sim.requests) >= 2, what="the corrupt reply and its resend")
        reading = d.read_attribute("Setpoint")
        assert reading.quality == AttrQuality.ATTR_VALID and reading.value == 20.0
    assert d.CommunicationErrors == errors
    # as many corrupt replies as one request's tries: the refresh fails, nothing is guessed
    sim.corrupt_next(2)
    readings = []

    def recovered() -> bool:
        readings.append(d.read_attribute("Setpoint"))
        return d.CommunicationErrors > errors and d.state() == DevState.ON

    wait_for(recovered, what="the failed refresh counted, then recovery")
    assert [r.value for r in readings if r.quality != AttrQuality.ATTR_INVALID] == [20.0] * len(
        [r for r in readings if r.quality != AttrQuality.ATTR_INVALID])
    assert d.Setpoint == 20.0 and not math.isnan(d.InternalTemperature)


def test_setpoint_is_memorized_in_the_db_but_never_written_by_a_restart(chillers, sims):
    d, sim = chillers[POLY], sims["poly"]
    d.Setpoint = 22.5
    stored = tango.Database().get_device_attribute_property(POLY, "Setpoint")["Setpoint"]
    assert stored["__value"] == ["22.5"]
    sim.respond(protocol.set_request(SET_SETPOINT, 18.0, 1))  # changed at the chiller meanwhile
    sim.requests.clear()
    tango.DeviceProxy(d.adm_name()).DevRestart(POLY)
    wait_for(state_is(d, DevState.ON), what="running after the device restart")
    assert set_frames(sim) == []  # the memorized value was not pushed to the chiller
    reading = d.read_attribute("Setpoint")
    # the write value follows what the chiller holds, so a GUI never offers a stale set point
    assert reading.value == 18.0 and reading.w_value == 18.0
    # a restarted device offers its family's attributes, not those other devices of the class
    # added (Tango re-creates it from the class's list), and leaves theirs alone
    assert "PumpOn" not in d.get_attribute_list() and "HeatIntegral" in d.get_attribute_list()
    assert chillers[RTE].PumpOn is True


def test_a_chiller_in_fahrenheit_is_not_shown_as_degc(chillers, sims):
    d, sim = chillers[FAHRENHEIT], sims["degf"]
    assert d.state() == DevState.FAULT and "degF" in d.status()
    assert d.TemperatureUnit == "degF"
    assert d.read_attribute("InternalTemperature").quality == AttrQuality.ATTR_INVALID
    assert d.read_attribute("UnitOn").value is True  # the rest of the status still reads
    sim.requests.clear()
    with pytest.raises(tango.DevFailed) as info:
        d.Setpoint = 20.0
    assert info.value.args[0].reason == "PlantDS_CommandRefused"
    assert set_frames(sim) == []


def test_init_after_a_family_change_asks_for_a_restart_and_keeps_the_server_up(chillers):
    """The attribute set is fixed while the server runs (adding and removing attributes of a
    running device is not safe in cppTango): Init says what to do, the other devices run on."""
    ro = chillers[MERLIN_RO]
    db = tango.Database()
    try:
        db.put_device_property(MERLIN_RO, {"Family": ["Polystat"]})
        ro.Init()
        assert ro.state() == DevState.FAULT
        status = ro.status()
        assert "Restart the server" in status and "adds ExternalTemperature" in status
        assert len(status.splitlines()) <= 2
        assert "ExternalTemperature" not in ro.get_attribute_list()
        assert chillers[POLY].state() == DevState.ON  # the rest of the server is untouched
    finally:
        db.put_device_property(MERLIN_RO, {"Family": ["Merlin"]})
        ro.Init()
    wait_for(state_is(ro, DevState.ON), what="running as a Merlin again")
    assert ro.Setpoint == 15.0


def test_a_bad_family_is_this_devices_fault_named_with_the_accepted_values(chillers):
    ro = chillers[MERLIN_RO]
    db = tango.Database()
    try:
        db.put_device_property(MERLIN_RO, {"Family": ["Polystatt"]})
        ro.Init()
        assert ro.state() == DevState.FAULT
        assert "Polystatt" in ro.status() and "Merlin" in ro.status() and "run Init" in ro.status()
        assert "Polystatt" in ro.LastError
        assert chillers[POLY].state() == DevState.ON
    finally:
        db.put_device_property(MERLIN_RO, {"Family": ["Merlin"]})
        ro.Init()
    wait_for(state_is(ro, DevState.ON), what="recovered by Init after the fix")
