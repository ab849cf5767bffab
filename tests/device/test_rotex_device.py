"""RotexHPSU end to end: PlantDS process ↔ real Tango DB ↔ HPSU simulator on real sockets.

One simulated bus, reached through both TCP gateways: a socketcand server and an ELM327
emulator. The bus is busy: the RoCon display and another client poll the nodes, and with
``mimic_clients`` they re-read (with ``00 00`` value bytes) every index our devices ask for,
so a false zero would show. The ``virtual://`` transport is a python-can bus inside one process,
so a separate PlantDS process cannot reach it; tests/unit/test_rotex_driver.py covers it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import tango
from tango import AttrQuality, DevState

from plantds.devices.rotex import protocol
from plantds.devices.rotex.simulator import HpsuSimulator
from plantds.devices.rotex.table import load_commands
from plantds.server.testing import run_plantds, state_is, wait_for

COMMANDS = load_commands()
# RefreshPeriod ≥ 500 ms keeps the bus and the CPU light when the machine is loaded.
FAST = {"RefreshPeriod": 500, "Timeout": 0.5, "Retries": 1, "SlowRefreshPeriod": 2000}
CAND, ELM, RO = "test/heatpump/cand", "test/heatpump/elm", "test/heatpump/ro"
CAND_ID, ELM_ID, RO_ID = 0x680, 0x681, 0x682
CAND_COMMANDS = ["t_hs", "t_hs_set", "t_dhw", "t_dhw_set", "t_ext", "water_pressure",
                 "flow_rate", "pump", "heat_slope", "t_frost_protect"]
ELM_COMMANDS = ["t_hs", "t_dhw", "water_pressure", "heat_slope"]
# Distinct nonzero values (t_ext negative), so a false zero or a swapped reply shows.
MODEL = {"t_hs": 35.2, "t_hs_set": 35.0, "t_dhw": 46.5, "t_dhw_set": 48.0, "t_ext": -4.5,
         "water_pressure": 1.85, "flow_rate": 1392, "pump": 65, "heat_slope": 0.5,
         "t_frost_protect": 2.0, "mode_01": 3, "error": 0}
# What a site keeps in the DB for CAND: it wins over the table and Language, and stays as it is.
SITE_ATTRIBUTE_CONFIG = {
    CAND: {
        "t_dhw": {"label": ["Hot water"]},
        "water_pressure": {"min_alarm": ["0.8"], "abs_change": ["0.02"]},
    }
}


@pytest.fixture(scope="module")
def sim():
    simulator = HpsuSimulator(socketcand_port=0, elm_port=0, latency_s=0.02,
                              background_rate_hz=5.0, mimic_clients=True, drift=False,
                              elm_timeout_s=0.05, seed=7).start()
    for name, value in MODEL.items():
        simulator.set_value(name, value)
    yield simulator
    simulator.stop()


def url(sim: HpsuSimulator, scheme: str) -> str:
    return next(u for u in sim.urls if u.startswith(scheme + "://"))


@pytest.fixture(scope="module")
def hpsu(tango_host, sim, server_logs):
    cand_url = url(sim, "socketcand")
    devices = {
        CAND: ("RotexHPSU", {"Url": cand_url, "OwnCanId": CAND_ID, "Commands": CAND_COMMANDS, **FAST}),
        ELM: ("RotexHPSU", {"Url": url(sim, "elm327+tcp"), "OwnCanId": ELM_ID,
                            "Commands": ELM_COMMANDS, **FAST, "RefreshPeriod": 1000}),
        # Shares the socketcand link with CAND; German labels; refuses every write.
        RO: ("RotexHPSU", {"Url": cand_url, "OwnCanId": RO_ID, "Commands": ["t_hs"],
                           "Language": "DE", "ReadOnly": "true", **FAST,
                           "polled_attr": ["t_hs", "1000"]}),
    }
    with run_plantds(tango_host, devices, server_logs, attribute_properties=SITE_ATTRIBUTE_CONFIG) as proxies:
        for proxy in proxies.values():
            wait_for(state_is(proxy, DevState.ON), timeout=30, what=f"{proxy.name()} ON")
        yield proxies


@pytest.fixture(autouse=True)
def heating(sim, hpsu):
    """Each test starts from a reachable heat pump heating without error, values as MODEL."""
    yield
    sim.set_online(True)
    for name, value in MODEL.items():
        sim.set_value(name, value)
    for proxy in hpsu.values():
        wait_for(state_is(proxy, DevState.ON), timeout=30, what=f"{proxy.name()} heating again")


def writes_from(sim: HpsuSimulator, own_id: int) -> list[protocol.Telegram]:
    telegrams = [protocol.parse_telegram(own_id, data) for data in sim.frames_from(own_id)]
    return [t for t in telegrams if t.msg_type == protocol.MSG_WRITE]


def qualities(proxy: tango.DeviceProxy, names: list[str]) -> list[AttrQuality]:
    return [reading.quality for reading in proxy.read_attributes(names)]


def t_hs_valid(proxy: tango.DeviceProxy) -> bool:
    return proxy.read_attribute("t_hs").quality == AttrQuality.ATTR_VALID


def refused(call, *args) -> tango.DevError:
    with pytest.raises(tango.DevFailed) as info:
        call(*args)
    return info.value.args[0]


def test_live_values_match_the_model_on_a_busy_bus(hpsu, sim):
    heard: list[tuple[int, bytes]] = []

    def tap(arbitration_id: int, data: bytes) -> None:
        heard.append((arbitration_id, data))

    sim.bus.attach(tap)
    try:
        for name, commands in ((CAND, CAND_COMMANDS), (ELM, ELM_COMMANDS)):
            d = hpsu[name]
            names = commands + ["mode_01", "error"]
            # A reply that a starved CPU handles late makes one value invalid for one cycle.
            wait_for(lambda: all(q == AttrQuality.ATTR_VALID for q in qualities(d, names)),
                     what=f"{name}: every value valid")
            for command, reading in zip(names, d.read_attributes(names)):
                assert reading.value == pytest.approx(MODEL[command]), (name, command)
            sim.set_value("t_hs", 41.3)
            wait_for(lambda: d.t_hs == pytest.approx(41.3), what=f"{name} following the heat pump")
            sim.set_value("t_hs", MODEL["t_hs"])
            assert d.RoundTripTime > 0
    finally:
        sim.bus.detach(tap)
    # The hazard was there: other stations asked for our indexes with 00 00 value bytes.
    ours = {(COMMANDS[n].node, COMMANDS[n].index) for n in CAND_COMMANDS}
    telegrams = [protocol.parse_telegram(i, d) for i, d in heard]
    assert any(t.msg_type == protocol.MSG_READ and t.value == 0 and (t.target, t.index) in ours
               and t.sender not in (CAND_ID, ELM_ID, RO_ID) for t in telegrams)


def test_attributes_come_from_the_table(hpsu):
    cand, elm, ro = hpsu[CAND], hpsu[ELM], hpsu[RO]
    cfg = cand.get_attribute_config("t_hs")
    assert (cfg.unit, cfg.format, cfg.label) == ("degC", "%.1f", "Flow temperature (heat generator)")
    assert cfg.writable == tango.AttrWriteType.READ
    assert cand.get_attribute_config("water_pressure").format == "%.3f"
    slope = cand.get_attribute_config("heat_slope")
    assert slope.writable == tango.AttrWriteType.READ_WRITE
    assert (float(slope.min_value), float(slope.max_value)) == (0.0, 3.0)
    assert cand.get_attribute_config("flow_rate").data_type == tango.CmdArgType.DevLong64
    # each device has its own set: Commands plus what State needs
    assert "flow_rate" not in {a.lower() for a in elm.get_attribute_list()}
    assert {"t_hs", "mode_01", "mode_01_label", "error"} <= set(ro.get_attribute_list())
    assert "t_dhw" not in ro.get_attribute_list()
    # Language DE on the same server
    assert ro.get_attribute_config("t_hs").label == "Vorlauftemperatur Wärmeerzeuger"
    assert cand.get_attribute_config("t_hs").label != ro.get_attribute_config("t_hs").label


def test_site_attribute_configuration_wins_and_stays_as_it_is(hpsu):
    d = hpsu[CAND]
    db = tango.Database()
    for attr, props in SITE_ATTRIBUTE_CONFIG[CAND].items():
        stored = db.get_device_attribute_property(CAND, [attr])[attr]
        assert {k: list(v) for k, v in stored.items()} == props
    assert d.get_attribute_config("t_dhw").label == "Hot water"
    assert d.get_attribute_config("water_pressure").alarms.min_alarm == "0.8"
    assert d.get_attribute_config("water_pressure").unit == "bar"
    # the table's defaults are applied, never stored
    assert dict(db.get_device_attribute_property(CAND, ["t_hs"])["t_hs"]) == {}


def test_value_codes_keep_the_code_and_show_the_label(hpsu):
    d = hpsu[CAND]
    assert d.mode_01 == 3
    assert d.mode_01_label == "heat"
    cfg = d.get_attribute_config("mode_01")
    assert cfg.data_type == tango.CmdArgType.DevLong64
    assert "3 heat" in cfg.description and "1 standby" in cfg.description
    assert (cfg.min_value, cfg.max_value) == ("1", "17")
    assert d.state() == DevState.ON
    assert "heat" in d.status()


def test_writes_are_rounded_verified_and_read_back(hpsu, sim):
    d = hpsu[CAND]
    d.write_attribute("heat_slope", 0.294)  # rounds to the table's resolution, 0.01
    assert d.heat_slope == pytest.approx(0.29)
    assert sim.value("heat_slope") == 0.29
    frame = writes_from(sim, CAND_ID)[-1]
    assert (frame.index, frame.value) == (COMMANDS["heat_slope"].index, 29)  # not 28
    d.write_attribute("heat_slope", 0)  # zero is written, not turned into a read
    assert sim.value("heat_slope") == 0.0 and d.heat_slope == 0.0
    d.write_attribute("t_frost_protect", -3.5)
    assert sim.value("t_frost_protect") == -3.5 and d.t_frost_protect == -3.5
    assert hpsu[ELM].WriteValue(["heat_slope", "0.45"]) == "0.45"
    assert sim.value("heat_slope") == 0.45
    wait_for(lambda: d.heat_slope == pytest.approx(0.45), what="the other device seeing it")
    # any table entry, acquired or not
    assert d.WriteValue(["t_dhw_setpoint1", "50"]) == "50.00"
    assert sim.value("t_dhw_setpoint1") == 50.0


def test_a_write_the_heat_pump_does_not_take_is_reported(hpsu, sim):
    sim.refuse_writes("t_dhw_setpoint2")
    before = sim.value("t_dhw_setpoint2")
    err = refused(hpsu[CAND].WriteValue, ["t_dhw_setpoint2", str(before + 5)])
    assert err.reason == "PlantDS_NotVerified"
    assert f"reports {before}" in err.desc


def test_bad_writes_are_refused_before_the_wire(hpsu, sim):
    d = hpsu[CAND]
    sent = len(writes_from(sim, CAND_ID))
    err = refused(d.WriteValue, ["t_hs", "20"])
    assert err.reason == "PlantDS_ReadOnly" and "read-only" in err.desc
    assert "nothing was sent" in err.desc
    refused(d.write_attribute, "t_hs", 20.0)  # a read-only attribute: Tango refuses it
    assert refused(d.write_attribute, "heat_slope", 3.5).reason == "API_WAttrOutsideLimit"
    for args, message in ((["heat_slope", "3.5"], "3"), (["heat_slope", "nan"], "finite"),
                          (["heat_slope", "-0.1"], "0"), (["mode_01", "2"], "not one of its codes"),
                          (["mode_01", "turbo"], "labels"), (["t_frost_protect", "-17"], "-16"),
                          (["no_such_thing", "1"], "not a command")):
        err = refused(d.WriteValue, args)
        assert err.reason == "PlantDS_OutOfRange", args
        assert message in err.desc, (args, err.desc)
    refused(d.write_attribute, "heat_slope", float("nan"))
    refused(d.write_attribute, "mode_01", 2)
    assert refused(d.WriteValue, ["heat_slope"]).reason == "PlantDS_OutOfRange"
    d.ReadValue("t_hs")  # one more exchange, so nothing refused can still be on its way
    assert len(writes_from(sim, CAND_ID)) == sent


def test_read_only_device_reads_but_refuses_every_write(hpsu, sim):
    ro = hpsu[RO]
    for call, args in ((ro.WriteValue, (["heat_slope", "0.5"],)), (ro.On, ()), (ro.Off, ())):
        err = refused(call, *args)
        assert err.reason == "PlantDS_ReadOnly" and "ReadOnly" in err.desc
    assert ro.ReadValue("t_dhw") == "46.50"
    assert writes_from(sim, RO_ID) == []


def test_read_value_reads_any_entry_as_pyhpsu_prints_it(hpsu, sim):
    d = hpsu[ELM]
    assert d.ReadValue("t_dhw_setpoint1") == f"{sim.value('t_dhw_setpoint1'):.2f}"
    assert d.ReadValue("mode_01") == "3"
    assert d.ReadValue("water_pressure") == "1.85"
    assert d.ReadValue("PUMP") == "65"
    assert refused(d.ReadValue, "no_such_thing").reason == "PlantDS_OutOfRange"


def test_no_value_word_makes_only_that_attribute_invalid(hpsu, sim):
    d = hpsu[CAND]
    sim.set_raw("t_ext", 0x8000)  # what a node sends for a sensor that is not fitted
    wait_for(lambda: d.read_attribute("t_ext").quality == AttrQuality.ATTR_INVALID,
             what="t_ext invalid")
    assert d.read_attribute("t_hs").quality == AttrQuality.ATTR_VALID
    assert d.state() == DevState.ON
    err = refused(d.ReadValue, "t_ext")
    assert "no value" in err.desc


def test_on_and_off_switch_mode_01(hpsu, sim):
    d = hpsu[CAND]
    d.Off()
    assert d.state() == DevState.OFF
    assert (d.mode_01, d.mode_01_label, sim.value("mode_01")) == (1, "standby", 1)
    assert "standby" in d.status().lower()
    wait_for(state_is(hpsu[ELM], DevState.OFF), what="the other device seeing standby")
    d.On()
    assert d.state() == DevState.ON
    assert (d.mode_01, d.mode_01_label, sim.value("mode_01")) == (3, "heat", 3)
    d.write_attribute("mode_01", 5)  # summer: active too
    assert d.state() == DevState.ON and d.mode_01_label == "summer"


def test_error_code_gives_fault(hpsu, sim):
    d = hpsu[CAND]
    sim.set_error(75)
    wait_for(state_is(d, DevState.FAULT), what="FAULT on an error code")
    assert "75" in d.status()
    assert d.error == 75
    sim.set_error(0)
    wait_for(state_is(d, DevState.ON), what="error cleared")


def test_bus_loss_gives_unknown_and_invalid_then_recovers(hpsu, sim):
    errors = {name: proxy.CommunicationErrors for name, proxy in hpsu.items()}
    sim.set_online(False)
    for name, proxy in hpsu.items():
        wait_for(lambda: proxy.state() == DevState.UNKNOWN and "not reachable" in proxy.status(),
                 what=f"{name} UNKNOWN with the bus silent")
        # polled attributes (t_hs on the RO device) follow within one polling period
        wait_for(lambda: proxy.read_attribute("t_hs").quality == AttrQuality.ATTR_INVALID,
                 what=f"{name}: t_hs INVALID")
        assert proxy.read_attribute("mode_01_label").quality == AttrQuality.ATTR_INVALID
    assert refused(hpsu[CAND].ReadValue, "t_hs").reason == "PlantDS_NotReachable"
    sim.set_online(True)
    for name, proxy in hpsu.items():
        wait_for(lambda: proxy.state() == DevState.ON and t_hs_valid(proxy),
                 timeout=30, what=f"{name} recovered")
        assert proxy.CommunicationErrors > errors[name]


def test_adapter_loss_then_recovery(hpsu, sim):
    """The gateways cut every TCP client off (adapter unplugged, WiFi bridge rebooted)."""
    def errors(*names: str) -> int:
        return sum(hpsu[name].CommunicationErrors for name in names)

    # CAND and RO share one socketcand link: whichever uses it first after the cut reopens it.
    links = ((CAND, RO), (ELM,))
    before = {link: errors(*link) for link in links}
    sim.drop_connections()
    for link in links:
        wait_for(lambda: errors(*link) > before[link], what=f"{link} noticing the cut")
    for name, proxy in hpsu.items():
        wait_for(lambda: proxy.state() == DevState.ON and t_hs_valid(proxy),
                 timeout=30, what=f"{name} reconnected")
        assert proxy.t_hs == pytest.approx(MODEL["t_hs"])


def plantds_hpsu(tango_host: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "plantds.server.cli", "hpsu", *args],
        env=dict(os.environ, TANGO_HOST=tango_host), capture_output=True, text=True, timeout=60,
    )


def test_hpsu_cli_reads_and_writes_through_the_device(tango_host, hpsu, sim):
    done = plantds_hpsu(tango_host, "-d", CAND, "-c", "t_hs", "-c", "pump", "-c", "t_dhw_setpoint1",
                        "-c", "heat_slope:0.35", "-o", "JSON")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert [r["name"] for r in results] == ["t_hs", "pump", "t_dhw_setpoint1", "heat_slope"]
    resp = {r["name"]: r["resp"] for r in results}
    assert resp["t_hs"] == "35.20" and resp["pump"] == 65 and resp["heat_slope"] == "0.35"
    assert resp["t_dhw_setpoint1"] == f"{sim.value('t_dhw_setpoint1'):.2f}"  # not acquired
    assert all(isinstance(r["timestamp"], float) for r in results)
    assert sim.value("heat_slope") == 0.35

    done = plantds_hpsu(tango_host, "-d", CAND, "-c", "mode_01", "-c", "t_hs:20", "-o", "CSV")
    assert done.returncode == 1  # the read-only write failed, the read did not
    assert "read-only" in done.stderr
    timestamp, name, value = done.stdout.strip().split(",")
    assert (name, value) == ("mode_01", "3") and float(timestamp) > 0


def test_hpsu_cli_on_a_device_that_is_not_a_heat_pump_fails_in_one_line(tango_host):
    """Issue 9: `plantds hpsu -d <a compressor>` ended in a traceback."""
    done = plantds_hpsu(tango_host, "-d", "sys/database/2", "-c", "t_hs")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "sys/database/2 is a DataBase, not a RotexHPSU heat pump device (-d names one)")


def test_init_follows_language_and_asks_for_a_restart_for_changed_commands(hpsu):
    ro = hpsu[RO]
    db = tango.Database()
    try:
        db.put_device_property(RO, {"Language": ["IT"]})
        ro.Init()
        wait_for(state_is(ro, DevState.ON), what="back after Init")
        assert ro.get_attribute_config("t_hs").label == "Mandata generatore di calore"
        # the attribute set is fixed while the server runs: Init says so and changes nothing
        db.put_device_property(RO, {"Commands": ["t_hs", "t_return"]})
        ro.Init()
        assert ro.state() == DevState.FAULT
        assert "adds t_return" in ro.status() and "Restart the server" in ro.status()
        assert "t_return" not in ro.get_attribute_list()
        db.put_device_property(RO, {"Commands": ["nonsense"]})
        ro.Init()
        assert ro.state() == DevState.FAULT
        assert "nonsense" in ro.status() and "Configuration error" in ro.status()
    finally:
        db.put_device_property(RO, {"Commands": ["t_hs"], "Language": ["DE"]})
        ro.Init()
    wait_for(state_is(ro, DevState.ON), what="back after Init")
    assert ro.get_attribute_config("t_hs").label == "Vorlauftemperatur Wärmeerzeuger"
    assert ro.is_attribute_polled("t_hs")
    assert list(db.get_device_property(RO, "polled_attr")["polled_attr"]) == ["t_hs", "1000"]
