"""One device's configuration error stays its own FAULT; Init never takes the server down."""

from __future__ import annotations

import threading

import pytest
import tango
from tango import DevState

from plantds.devices.coleparmer.simulator import ChillerSimulator
from plantds.devices.cryomech.simulator import CpaSimulator
from plantds.server.testing import run_plantds, state_is, wait_for

GOOD, TYPO, CHILLER = "fault/compressor/good", "fault/compressor/typo", "fault/chiller/1"
FAST = {"RefreshPeriod": 300}


@pytest.fixture(scope="module")
def sims():
    cpa = CpaSimulator().start()
    chiller = ChillerSimulator("Polystat", setpoint=20.0)
    chiller.start()
    yield cpa, chiller
    cpa.stop()
    chiller.stop()


@pytest.fixture(scope="module")
def plant(tango_host, sims, server_logs):
    cpa, chiller = sims
    devices = {
        GOOD: ("CryomechCPA", {"Url": cpa.url, **FAST}),
        TYPO: ("CryomechCPA", {"Url": cpa.url, "TemperatureUnit": "C", **FAST}),
        CHILLER: ("ColeParmerChiller", {"Url": chiller.url, **FAST}),
    }
    thresholds = {GOOD: {"HighPressure": {"abs_change": ["0.01"]}},
                  CHILLER: {"Setpoint": {"abs_change": ["0.01"]}}}
    with run_plantds(tango_host, devices, server_logs, thresholds) as proxies:
        yield proxies


def test_a_unit_typo_is_that_devices_fault_and_init_after_the_fix_recovers(plant):
    good, typo = plant[GOOD], plant[TYPO]
    wait_for(state_is(good, DevState.OFF), what="the other compressor running normally")
    assert typo.state() == DevState.FAULT
    status = typo.status()
    assert "TemperatureUnit 'C'" in status and "degC, K, degF" in status and "run Init" in status
    assert len(status.splitlines()) <= 2
    assert "TemperatureUnit" in typo.LastError
    with pytest.raises(tango.DevFailed) as info:
        typo.On()
    assert info.value.args[0].reason == "PlantDS_ConfigurationError"
    db = tango.Database()
    try:
        db.put_device_property(TYPO, {"TemperatureUnit": ["degC"]})
        typo.Init()
        wait_for(state_is(typo, DevState.OFF), what="recovered by Init")
        assert typo.get_attribute_config("OilTemperature").unit == "degC"
    finally:
        db.put_device_property(TYPO, {"TemperatureUnit": ["C"]})
        typo.Init()
    assert typo.state() == DevState.FAULT and good.state() == DevState.OFF


def test_many_inits_under_readers_and_event_subscribers_never_crash_the_server(plant):
    """Init with unit and Family changes while clients read and hold change-event
    subscriptions: the attribute set stays fixed, so the server survives every one."""
    good, chiller = plant[GOOD], plant[CHILLER]
    wait_for(state_is(chiller, DevState.ON), what="chiller running")
    events: list[object] = []
    subs = [(d, d.subscribe_event(a, tango.EventType.CHANGE_EVENT, events.append))
            for d, a in ((good, "HighPressure"), (good, "OperatingState"), (chiller, "Setpoint"))]
    stop = threading.Event()
    failures: list[str] = []

    def reader(name: str, attrs: list[str]):
        proxy = tango.DeviceProxy(name)
        while not stop.is_set():
            try:
                proxy.read_attributes(attrs)
            except tango.DevFailed as exc:  # a read during Init may be refused, never lost
                if exc.args[0].reason in ("API_ServerNotRunning", "API_CorbaException"):
                    failures.append(exc.args[0].desc)

    readers = [threading.Thread(target=reader, args=(GOOD, ["HighPressure", "OilTemperature"])),
               threading.Thread(target=reader, args=(CHILLER, ["Setpoint", "InternalTemperature"]))]
    for thread in readers:
        thread.start()
    db = tango.Database()
    try:
        for i in range(100):
            db.put_device_property(GOOD, {"TemperatureUnit": [("K", "degC", "degF")[i % 3]]})
            good.Init()
            db.put_device_property(CHILLER, {"Family": [("RTE", "Polystat")[i % 2]]})
            chiller.Init()  # RTE would change the attribute set: FAULT, asking for a restart
    finally:
        stop.set()
        for thread in readers:
            thread.join()
        db.put_device_property(GOOD, {"TemperatureUnit": ["degC"]})
        db.put_device_property(CHILLER, {"Family": ["Polystat"]})
        good.Init()
        chiller.Init()
        for device, sub in subs:
            device.unsubscribe_event(sub)
    assert failures == []
    wait_for(state_is(good, DevState.OFF), what="compressor back")
    wait_for(state_is(chiller, DevState.ON), what="chiller back")
    assert plant[TYPO].state() == DevState.FAULT  # the server process is still the same one
    assert events
