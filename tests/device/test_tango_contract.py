"""The contract with Tango clients (DESIGN.md), proven with PyTango's default client settings.

One PlantDS process hosts a slow compressor (every reply 0.9 s late), a Polystat paced at
9600 baud, and a heat pump over ELM327 whose nodes answer in 50 ms and lack three of the listed
commands. Every proxy keeps PyTango's default 3 s timeout: no request may time out, a read
right after a write returns the new value (polled attributes too), a request the client gave
up on is either withdrawn unsent or completed and reported, and events come from the device.
"""

from __future__ import annotations

import threading
import time

import pytest
import tango
from tango import AttrQuality, DevState

from plantds.devices.coleparmer import protocol as nc
from plantds.devices.coleparmer.simulator import ChillerSimulator
from plantds.devices.cryomech.simulator import CpaSimulator
from plantds.devices.rotex.simulator import HpsuSimulator
from plantds.server.testing import run_plantds, state_is, wait_for

CPA, SLOW_CPA, CHILLER, HPSU = (
    "contract/compressor/1", "contract/compressor/slow", "contract/chiller/1", "contract/heatpump/1",
)
FC06_START = bytes([0x06, 0x00, 0x01, 0x00, 0x01])
LATE_S = 0.9  # the compressor's replies come this late: a working, slow instrument
MUTED = ("t_v1", "tliq2", "ta2")  # listed, but this heat pump never answers them
DEFAULT_TIMEOUT_MS = 3000


@pytest.fixture(scope="module")
def sims():
    cpa = CpaSimulator(start_s=0.4, stop_s=0.4).start()
    cpa.set_delay(LATE_S)
    slow = CpaSimulator(start_s=0.4, stop_s=0.4).start()
    chiller = ChillerSimulator("Polystat", precision=0.1, setpoint=20.0, baudrate=9600)
    chiller.start()
    hpsu = HpsuSimulator(elm_port=0, latency_s=0.05, drift=False, seed=3).start()
    hpsu.mute(*MUTED)
    yield {"cpa": cpa, "slow": slow, "chiller": chiller, "hpsu": hpsu}
    for sim in (cpa, slow, hpsu):
        sim.stop()
    chiller.stop()


@pytest.fixture(scope="module")
def plant(tango_host, sims, server_logs):
    elm = next(u for u in sims["hpsu"].urls if u.startswith("elm327+tcp://"))
    devices = {
        CPA: ("CryomechCPA", {"Url": sims["cpa"].url, "Timeout": 1.5, "Retries": 0}),
        SLOW_CPA: ("CryomechCPA", {"Url": sims["slow"].url, "Timeout": 5.0, "Retries": 0,
                                   "RefreshPeriod": 100}),
        CHILLER: ("ColeParmerChiller", {"Url": sims["chiller"].url, "Family": "Polystat"}),
        # the default monitoring Commands over ELM327, at a period that fits that transport
        HPSU: ("RotexHPSU", {"Url": elm, "RefreshPeriod": 3000, "SlowRefreshPeriod": 30000,
                             "Timeout": 0.5, "Retries": 1}),
    }
    attribute_properties = {CHILLER: {"InternalTemperature": {"abs_change": ["0.01"]}}}
    with run_plantds(tango_host, devices, server_logs, attribute_properties):
        # Fresh proxies with PyTango's defaults (the harness's own have a generous timeout).
        proxies = {name: tango.DeviceProxy(name) for name in devices}
        for name, proxy in proxies.items():
            assert proxy.get_timeout_millis() == DEFAULT_TIMEOUT_MS
            wait_for(lambda p=proxy: p.state() not in (DevState.INIT, DevState.UNKNOWN),
                     timeout=60, what=f"{name} reachable")
        yield proxies


def test_every_command_and_write_answers_within_the_default_client_timeout(plant, sims):
    cpa, chiller, hpsu = plant[CPA], plant[CHILLER], plant[HPSU]
    requests = [
        (cpa, lambda: cpa.On()), (cpa, lambda: cpa.Off()),
        (chiller, lambda: chiller.write_attribute("Setpoint", 21.5)),
        (chiller, lambda: chiller.SetSetpoint(20.0)),
        (chiller, lambda: chiller.write_attribute("HeatIntegral", 1.5)),
        (chiller, lambda: chiller.Off()), (chiller, lambda: chiller.On()),
        (hpsu, lambda: hpsu.write_attribute("heat_slope", 0.6)),
        (hpsu, lambda: hpsu.WriteValue(["heat_slope", "0.5"])),
        (hpsu, lambda: hpsu.ReadValue("t_dhw")),
        (hpsu, lambda: hpsu.Off()), (hpsu, lambda: hpsu.On()),
        (hpsu, lambda: hpsu.write_attribute("mode_01", 3)),
    ]
    for proxy, request in requests:
        request()  # any DevFailed (a client timeout included) fails the test with its text
    assert hpsu.ReadValue("mode_01") == "3"


def test_a_compressor_start_returns_at_once_and_reports_its_outcome(plant, sims):
    cpa = plant[CPA]
    events: list[str] = []
    sub = cpa.subscribe_event("LastCommandResult", tango.EventType.CHANGE_EVENT,
                              lambda e: e.err or events.append(e.attr_value.value))
    try:
        cpa.On()
        assert cpa.state() in (DevState.MOVING, DevState.ON)
        wait_for(state_is(cpa, DevState.ON), what="running")
        wait_for(lambda: any(e.startswith("On: compressor") for e in events),
                 what="the outcome as a change event of LastCommandResult")
        assert any("accepted" in e for e in events)
        cpa.Off()
        wait_for(state_is(cpa, DevState.OFF), what="stopped")
    finally:
        cpa.unsubscribe_event(sub)


def test_reads_are_served_while_a_command_waits_for_the_instrument(plant, sims):
    cpa = plant[CPA]
    done = threading.Event()
    served_during: list[float] = []

    def start():
        try:
            cpa.On()
        finally:
            done.set()

    thread = threading.Thread(target=start)
    thread.start()
    reader = tango.DeviceProxy(CPA)
    while not done.is_set():
        value = reader.read_attribute("HighPressure").value  # never queued behind the command
        if not done.is_set():
            served_during.append(value)
    thread.join()
    assert served_during, "no read was served while On was on the wire"
    wait_for(state_is(cpa, DevState.ON), what="running")
    cpa.Off()
    wait_for(state_is(cpa, DevState.OFF), what="stopped")


def test_a_request_the_client_gave_up_on_is_withdrawn_or_completed_never_sent_later(plant, sims):
    """Every reply 2.8 s late: a start queued behind a refresh in flight cannot start before its
    client's deadline. It must be withdrawn unsent, or (if it did start) reported."""
    slow, sim = plant[SLOW_CPA], sims["slow"]
    sim.set_delay(2.8)
    try:
        wait_for(lambda: slow.read_attribute("RoundTripTime").value > 2000, timeout=20,
                 what="refreshes at the slow pace")
        sim.received_bytes(clear=True)
        with pytest.raises(tango.DevFailed) as info:
            slow.On()
        err = info.value.args[0]
        assert err.reason in ("PlantDS_NotReachable", "PlantDS_Pending"), err
        if err.reason == "PlantDS_NotReachable":
            assert "withdrawn" in err.desc and "Nothing was sent" in err.desc
            time.sleep(4 * 2.8)  # long enough for any late send to have reached the panel
            assert FC06_START not in sim.received_bytes()
            assert not slow.LastCommandResult.startswith("On")
        else:  # it had started: it completes and says so
            wait_for(lambda: slow.LastCommandResult.startswith("On: compressor"), timeout=20,
                     what="the started command's outcome")
    finally:
        sim.set_delay(0)
        wait_for(lambda: slow.state() != DevState.UNKNOWN, timeout=20, what="fast again")
        if slow.state() in (DevState.ON, DevState.MOVING):
            wait_for(state_is(slow, DevState.ON), timeout=20)
            slow.Off()


@pytest.mark.parametrize("polled", [False, True])
def test_a_read_right_after_a_write_returns_the_new_value(plant, polled):
    """What a bluesky scan does: write, then read, with the attribute polled or not."""
    chiller, hpsu = plant[CHILLER], plant[HPSU]
    if polled:
        chiller.poll_attribute("Setpoint", 3000)
        hpsu.poll_attribute("heat_slope", 10000)
    try:
        for i, setpoint in enumerate((18.0, 19.5, 21.0, 20.2, 19.0, 20.0)):
            chiller.write_attribute("Setpoint", setpoint)
            reading = chiller.read_attribute("Setpoint")
            assert (reading.value, reading.w_value) == (setpoint, setpoint), f"write {i}"
        for slope in (0.7, 0.4, 0.5):
            hpsu.write_attribute("heat_slope", slope)
            assert hpsu.read_attribute("heat_slope").value == pytest.approx(slope)
        chiller.Off()
        assert chiller.UnitOn is False and chiller.state() == DevState.OFF
        chiller.On()
        assert chiller.UnitOn is True and chiller.state() == DevState.ON
    finally:
        if polled:
            chiller.stop_poll_attribute("Setpoint")
            hpsu.stop_poll_attribute("heat_slope")


def test_write_values_follow_a_front_panel_change(plant, sims):
    chiller, sim = plant[CHILLER], sims["chiller"]
    sim.respond(nc.set_request(0xF0, 17.5, 1))  # someone turns the knob at the chiller
    try:
        wait_for(lambda: chiller.read_attribute("Setpoint").w_value == 17.5,
                 what="the GUI's write field following the chiller")
    finally:
        chiller.SetSetpoint(20.0)


def test_change_events_are_pushed_by_the_device_without_polling(plant, sims):
    chiller = plant[CHILLER]
    assert not chiller.is_attribute_polled("InternalTemperature")
    values: list[float] = []
    sub = chiller.subscribe_event("InternalTemperature", tango.EventType.CHANGE_EVENT,
                                  lambda e: e.err or values.append(e.attr_value.value))
    try:
        chiller.SetSetpoint(26.0)  # the bath starts warming: its temperature changes
        wait_for(lambda: len(set(values)) >= 3, what="change events as the bath warms")
    finally:
        chiller.unsubscribe_event(sub)
        chiller.SetSetpoint(20.0)


def test_a_write_never_sends_an_unchanged_reading_again_with_its_old_stamp(plant):
    """A write republishes the snapshot with what it learned (the set point). The bath
    temperature it did not change must not come again with its old time stamp: a client takes
    such an event for one that arrived late (the benchmark measured it as a 0.8 s lag)."""
    chiller = plant[CHILLER]
    stamps: list[float] = []
    sub = chiller.subscribe_event("InternalTemperature", tango.EventType.CHANGE_EVENT,
                                  lambda e: e.err or stamps.append(e.attr_value.time.totime()))
    try:
        for _ in range(3):
            chiller.write_attribute("Setpoint", 20.0)
        time.sleep(0.5)  # events are pushed before each write returns; this is only slack
    finally:
        chiller.unsubscribe_event(sub)
    assert stamps and stamps == sorted(set(stamps)), stamps


def test_unanswered_heat_pump_commands_are_invalid_named_and_the_device_stays_on(plant):
    hpsu = plant[HPSU]
    assert hpsu.state() == DevState.ON
    for name in MUTED:
        assert hpsu.read_attribute(name).quality == AttrQuality.ATTR_INVALID
    assert hpsu.read_attribute("t_hs").quality == AttrQuality.ATTR_VALID
    status = hpsu.status()
    assert all(name in status for name in MUTED) and len(status.splitlines()) <= 2


def test_silence_makes_values_invalid_and_state_unknown_within_three_periods(plant, sims):
    """Documented bound: three refresh periods (here 3 s) after the last good refresh, plus
    one request's timeouts for UNKNOWN with the reason. The wait allows a loaded machine."""
    chiller, sim = plant[CHILLER], sims["chiller"]
    sim.set_serial_mode(False)
    try:
        wait_for(lambda: chiller.read_attribute("InternalTemperature").quality == AttrQuality.ATTR_INVALID,
                 timeout=3 * 3.0 * 3, what="INVALID within three refresh periods")
        wait_for(state_is(chiller, DevState.UNKNOWN), timeout=30, what="UNKNOWN")
    finally:
        sim.set_serial_mode(True)
    wait_for(state_is(chiller, DevState.ON), timeout=30, what="recovered")


def test_a_silent_heat_pump_goes_invalid_and_unknown_then_recovers(plant, sims):
    """Bound: three RefreshPeriods (9 s here) for INVALID; UNKNOWN once mode_01 has gone
    unanswered through its resends. The wait allows a loaded machine."""
    hpsu, sim = plant[HPSU], sims["hpsu"]
    sim.set_online(False)
    try:
        wait_for(lambda: hpsu.read_attribute("t_hs").quality == AttrQuality.ATTR_INVALID,
                 timeout=3 * 9.0, what="INVALID within three refresh periods")
        wait_for(state_is(hpsu, DevState.UNKNOWN), timeout=30, what="UNKNOWN")
    finally:
        sim.set_online(True)
    wait_for(state_is(hpsu, DevState.ON), timeout=60, what="recovered")
