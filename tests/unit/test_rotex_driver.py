"""HPSU driver against the simulator over every transport: virtual bus, socketcand, ELM327.

The simulator runs a busy bus: the RoCon display (0x10A) and another client (0x190) poll the
nodes, and with ``mimic_clients`` both re-read every index the driver asks for, so a ``00 00``
request from 0x190 and a reply to the display always arrive around the driver's own reply.
"""

from __future__ import annotations

import itertools

import time

import pytest

from plantds.devices.rotex import protocol
from plantds.devices.rotex.driver import HpsuDriver, NoReply, WriteNotVerified
from plantds.devices.rotex.simulator import DISPLAY_ID, OTHER_CLIENT_ID, HpsuSimulator
from plantds.devices.rotex.transport import opener
from plantds.server.links import CommError
from plantds.server.testing import wait_for
from plantds.server.worker import Comm, IOWorker

OWN_ID = 0x680
TRANSPORTS = ("virtual", "socketcand", "elm327")
TRACKED = ("t_hs", "t_dhw", "t_ext", "water_pressure", "flow_rate", "mode_01", "error",
           "t_hc", "t_hc_set", "heat_slope")
# Distinct nonzero values (t_ext negative), so a false zero or a swapped reply shows.
MODEL = {"t_hs": 26.8, "t_dhw": 43.3, "t_ext": -5.0, "water_pressure": 1.85, "flow_rate": 1392,
         "mode_01": 3, "error": 0, "t_hc": 23.5, "t_hc_set": 34.0, "heat_slope": 0.5}

_channels = itertools.count()
# Reply timeouts: one a loaded machine does not reach by accident, and a short one for the tests
# that make the heat pump silent on purpose (each silent request costs it, twice).
REPLY_TIMEOUT_S = 1.0
SILENCE_TIMEOUT_S = 0.2


def start_sim(**options) -> HpsuSimulator:
    settings = dict(channel=f"virtual://hpsu-test-{next(_channels)}", socketcand_port=0,
                    elm_port=0, latency_s=0.005, background_rate_hz=20.0, mimic_clients=True,
                    drift=False, elm_timeout_s=0.03, seed=4)
    settings.update(options)
    return HpsuSimulator(**settings).start()


def url_of(sim: HpsuSimulator, transport: str) -> str:
    return next(url for url in sim.urls if url.startswith(transport))


@pytest.fixture
def sim():
    simulator = start_sim()
    for name, value in MODEL.items():
        simulator.set_value(name, value)
    yield simulator
    simulator.stop()


@pytest.fixture
def drivers():
    made: list[HpsuDriver] = []

    def make(url: str, **options) -> HpsuDriver:
        settings = dict(commands=TRACKED, timeout=REPLY_TIMEOUT_S, retries=1)
        settings.update(options)
        driver = HpsuDriver(url, **settings)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.close()


class BusTap:
    """Every frame on the simulated bus, as a station that only listens."""

    def __init__(self, sim: HpsuSimulator):
        self.frames: list[tuple[int, bytes]] = []
        sim.bus.attach(self.hear)

    def hear(self, arbitration_id: int, data: bytes) -> None:
        self.frames.append((arbitration_id, data))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refresh_matches_the_model_on_a_busy_bus(sim, drivers, transport):
    tap = BusTap(sim)
    driver = drivers(url_of(sim, transport))
    driver.connect()
    for _ in range(3):
        assert driver.refresh() == MODEL
    # The hazard was really there: requests with 00 00 for the indexes we read, from another
    # client and from the very node we were waiting for (which passes any receive filter).
    indexes = {(sim.commands[n].node, sim.commands[n].index) for n in TRACKED}
    requests = [protocol.parse_telegram(i, d) for i, d in tap.frames]
    false_zeros = [t for t in requests if t.msg_type == protocol.MSG_READ and t.value == 0
                   and (t.sender, t.index) in indexes]
    assert len(false_zeros) >= len(TRACKED)
    assert any(t.sender == OTHER_CLIENT_ID and (t.target, t.index) in indexes for t in requests)
    # Every value was read (a reply a starved simulator sends after the ELM327's short window is
    # a timeout that the retry makes good: that is load, not the hazard).
    assert driver.counters.failed_reads == 0


@pytest.mark.parametrize("transport", ["socketcand", "elm327"])
def test_a_malformed_message_is_skipped_and_counted_never_the_links_end(sim, drivers, transport):
    """Issue 8: one garbled socketcand message or ELM327 line lost the link (python-can's
    socketcand client kept failing on it for good)."""
    driver = drivers(url_of(sim, transport))
    driver.connect()
    port = driver._link.transport()
    sim.corrupt_next(20)
    for _ in range(3):
        assert driver.refresh() == MODEL
    assert driver._link.transport() is port  # the same port: never dropped
    assert port.malformed >= 3


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_values_follow_the_model(sim, drivers, transport):
    driver = drivers(url_of(sim, transport))
    driver.connect()
    driver.refresh()
    sim.set_value("t_hs", 31.4)
    sim.set_value("mode_01", "summer")
    sim.set_error(75)
    values = driver.refresh()
    assert (values["t_hs"], values["mode_01"], values["error"]) == (31.4, 5, 75)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_replies_to_the_display_are_passive_updates(sim, drivers, transport):
    driver = drivers(url_of(sim, transport))
    driver.connect()
    driver.refresh()
    driver.refresh()
    assert driver.counters.passive_updates > 0
    assert driver.refresh() == MODEL  # and they never carried a wrong value


@pytest.mark.parametrize("transport", ("virtual", "socketcand"))
def test_a_value_the_display_just_read_is_not_requested_again(drivers, transport):
    sim = start_sim(background_rate_hz=0.0, mimic_clients=False)
    try:
        driver = drivers(url_of(sim, transport), commands=("t_hs", "t_dhw"))
        driver.connect()
        driver.refresh()
        sim.set_value("t_dhw", 51.2)
        tap = BusTap(sim)
        sim.poll("t_dhw")  # the display asks; the node answers it
        wait_for(lambda: any(i == sim.commands["t_dhw"].node for i, _ in tap.frames),
                 what="the node answering the display", interval=0.005)
        sent_before = len(sim.frames_from(OWN_ID))
        assert driver.refresh()["t_dhw"] == 51.2
        assert len(sim.frames_from(OWN_ID)) == sent_before + 1  # only t_hs was requested
        assert driver.counters.skipped == 1
    finally:
        sim.stop()


def test_slow_commands_are_read_once_per_slow_period(sim, drivers):
    driver = drivers(url_of(sim, "virtual"), commands=("t_hs", "heat_slope"), slow_period_s=60)
    driver.connect()
    for _ in range(3):
        driver.refresh()
    heat_slope_read = protocol.encode_read(sim.commands["heat_slope"])
    assert sim.frames_from(OWN_ID).count(heat_slope_read) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_writes_of_zero_negatives_and_rounding_are_verified(sim, drivers, transport):
    driver = drivers(url_of(sim, transport))
    driver.connect()
    assert sim.value("t_flow_ch_adj") != 0
    assert driver.write("t_flow_ch_adj", 0) == 0.0  # pyHPSU sent a read for a zero
    assert sim.value("t_flow_ch_adj") == 0.0
    assert driver.write("out_temp_adapt", -2.5) == -2.5
    assert sim.value("out_temp_adapt") == -2.5
    assert driver.write("heat_slope", 0.29) == 0.29  # 0.29 x 100 = 28.999… must round to 29
    assert sim.value("heat_slope") == 0.29
    assert driver.write("mode_01", "summer") == 5
    writes = [d for d in sim.frames_from(OWN_ID) if d[0] & 0x0F == protocol.MSG_WRITE]
    assert len(writes) == 4 and all(len(d) == 7 and d[2] == protocol.FA for d in writes)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bad_writes_are_refused_before_the_wire(sim, drivers, transport):
    driver = drivers(url_of(sim, transport))
    driver.connect()
    before = len(sim.frames_from(OWN_ID))
    with pytest.raises(ValueError, match="read-only"):
        driver.write("t_hs", 20.0)
    with pytest.raises(ValueError, match="maximum"):
        driver.write("t_dhw_setpoint1", 99.0)
    with pytest.raises(ValueError, match="label"):
        driver.write("mode_01", "turbo")
    driver.read("t_hs")  # something surely sent, so nothing else can still be on its way
    # Only that read went out (over ELM327 it may go twice: a reply to the display came first).
    sent = sim.frames_from(OWN_ID)[before:]
    assert sent and set(sent) == {protocol.encode_read(sim.commands["t_hs"])}


def test_a_write_that_does_not_take_is_reported(sim, drivers):
    driver = drivers(url_of(sim, "virtual"))
    driver.connect()
    sim.refuse_writes("t_dhw_setpoint1")
    with pytest.raises(WriteNotVerified, match=r"asked 55.*reports 48\.0"):
        driver.write("t_dhw_setpoint1", 55)


def test_an_unanswered_command_is_invalid_but_the_link_stays_up(sim, drivers):
    driver = drivers(url_of(sim, "virtual"), timeout=SILENCE_TIMEOUT_S)
    driver.connect()
    sim.mute("t_dhw")
    values = driver.refresh()
    assert values["t_dhw"] is None
    assert {k: v for k, v in values.items() if k != "t_dhw"} == {
        k: v for k, v in MODEL.items() if k != "t_dhw"}
    assert driver.counters.failed_reads == 1
    with pytest.raises(NoReply, match="t_dhw"):
        driver.read("t_dhw")
    assert driver.read("t_hs") == MODEL["t_hs"]


def test_unanswered_commands_are_reprobed_slowly_and_never_drop_the_link(sim, drivers):
    """Three listed commands this unit lacks: invalid, named, asked again only every slow
    period; the commands that answer decide connectivity."""
    muted = [n for n in TRACKED if n != "mode_01"][:3]
    # The slow period must outlast the first refresh, which waits Timeout × (1 + Retries) for
    # each muted command (3 s here), with a loaded machine's margin.
    slow_period_s = 10.0
    driver = drivers(url_of(sim, "virtual"), timeout=0.5, slow_period_s=slow_period_s)
    driver.connect()
    sim.mute(*muted)
    first = driver.refresh()
    assert all(first[n] is None for n in muted) and first["mode_01"] is not None
    assert set(driver.unanswered) == set(muted)
    asked = driver.counters.requests
    for _ in range(3):
        values = driver.refresh()  # nothing unanswered asked again within the slow period
        assert all(values[n] is None for n in muted)
    answering = len(TRACKED) - len(muted)
    assert driver.counters.requests - asked <= 3 * answering
    assert driver.counters.failed_reads == len(muted)
    time.sleep(slow_period_s + 0.1)
    driver.refresh()  # re-probed now
    assert driver.counters.failed_reads == 2 * len(muted)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_silent_heat_pump_is_a_comm_error_then_recovers(sim, drivers, transport):
    driver = drivers(url_of(sim, transport), timeout=SILENCE_TIMEOUT_S)
    driver.connect()
    sim.set_online(False)
    with pytest.raises(CommError, match="does not answer mode_01"):
        driver.refresh()
    driver.close()
    with pytest.raises(CommError, match="does not answer"):
        driver.connect()
    driver.close()
    sim.set_online(True)
    driver.connect()
    assert driver.refresh() == MODEL


@pytest.mark.parametrize("transport", ("socketcand", "elm327"))
def test_dropped_connection_is_a_comm_error_then_recovers(sim, drivers, transport):
    driver = drivers(url_of(sim, transport))
    driver.connect()
    driver.refresh()
    sim.drop_connections()
    with pytest.raises(CommError):
        driver.refresh()
    driver.close()
    driver.connect()
    assert driver.refresh() == MODEL


def test_worker_reports_lost_and_reconnects(sim, drivers):
    driver = drivers(url_of(sim, "elm327"), timeout=SILENCE_TIMEOUT_S)
    worker = IOWorker("heatpump", driver, refresh_period_s=0.05)
    worker.BACKOFF_START_S = 0.05

    worker.start()
    try:
        wait_for(lambda: worker.comm is Comm.CONNECTED and worker.snapshot.values, what="first values")
        assert worker.snapshot.values == MODEL
        sim.drop_connections()
        sim.set_online(False)
        wait_for(lambda: worker.comm is Comm.LOST, what="the link marked lost")
        sim.set_online(True)
        wait_for(lambda: worker.comm is Comm.CONNECTED, what="reconnection")
        assert worker.submit(lambda drv: drv.write("heat_slope", 0.7)).result(30) == 0.7
    finally:
        worker.stop()


def test_elm327_clone_without_pp_is_named(drivers):
    sim = start_sim(elm_pp=False)
    try:
        driver = drivers(url_of(sim, "elm327"))
        with pytest.raises(CommError, match=r"does not support programmable parameters \(AT PP\)"):
            driver.connect()
        assert not sim.received  # nothing reached the bus
    finally:
        sim.stop()


def test_elm327_reads_end_at_their_reply_and_writes_at_the_prompt(drivers):
    """Issue 8: every ELM327 exchange waited out the adapter's reply window after the frames.
    Here the window is 30 s, beyond the driver's wait for the prompt: a read that did not end on
    its response count, or a write sent with responses on, would fail with no prompt."""
    sim = start_sim(elm_timeout_s=30.0, background_rate_hz=0.0, mimic_clients=False)
    try:
        for name, value in MODEL.items():
            sim.set_value(name, value)
        driver = drivers(url_of(sim, "elm327"))
        driver.connect()
        assert driver.refresh() == MODEL
        assert driver.write("heat_slope", 0.7) == 0.7 and sim.value("heat_slope") == 0.7
        assert driver.counters.timeouts == 0
    finally:
        sim.stop()


def test_an_elm327_without_response_counts_still_reads_and_writes(sim, drivers):
    """A clone older than v1.3 answers '?' to a response count: the port reads without it."""
    sim.elm_counts = False
    driver = drivers(url_of(sim, "elm327"))
    driver.connect()
    assert driver.refresh() == MODEL
    assert driver.write("heat_slope", 0.7) == 0.7
    assert driver.counters.failed_reads == 0


def test_a_pre_v13_clone_is_noticed_on_a_first_read_that_goes_unanswered(drivers):
    """The very first read finds out the adapter takes no response count. If that read then
    goes unanswered while the node talks to others, the port must not send a count again (the
    clone answers '?', which fails the link)."""
    sim = start_sim(elm_counts=False)  # mimic: the node's own frame comes in every window
    try:
        sim.mute("t_hs")
        cmd = sim.commands["t_hs"]
        port = opener(url_of(sim, "elm327"), sim.model.nodes).open()
        try:
            heard: list[tuple[int, bytes]] = []
            reply = port.transact(OWN_ID, cmd.node, protocol.encode_read(cmd), REPLY_TIMEOUT_S,
                                  lambda *_: False, lambda *frame: heard.append(frame))
            assert reply is None and heard  # unanswered, the node's other frames observed
        finally:
            port.close()
    finally:
        sim.stop()


def test_configuration_errors_are_named_up_front():
    with pytest.raises(ValueError, match="unknown scheme"):
        HpsuDriver("can://can0")
    with pytest.raises(ValueError, match="display"):
        HpsuDriver("virtual://x", own_id=DISPLAY_ID)
    with pytest.raises(ValueError, match="unknown heat pump command"):
        HpsuDriver("virtual://x", commands=["t_hs", "no_such_thing"])
    with pytest.raises(ValueError, match="socketcand://host"):
        HpsuDriver("socketcand:///can0")
    # Building the opener checks the Url without touching a port (no SocketCAN here).
    assert callable(opener("socketcan://can0", [0x180]).open)
    assert callable(opener("elm327:///dev/ttyUSB0?baudrate=115200", [0x180]).open)
