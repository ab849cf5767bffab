"""CpaDriver against the CPA simulator on real loopback sockets (no Tango)."""

from __future__ import annotations


import time

import pytest

from plantds.devices.cryomech import protocol as p
from plantds.devices.cryomech.driver import (
    CommandRefused,
    CommError,
    CpaDriver,
    ModbusReplyError,
    PanelRefused,
)
from plantds.devices.cryomech.simulator import CpaSimulator
from plantds.server.testing import free_ports, wait_for
from plantds.server.worker import Comm, IOWorker, Settle
from pymodbus.framer.rtu import FramerRTU

FAST = {"start_s": 0.3, "stop_s": 0.3}
REPLY_TIMEOUT_S = 2.0
SWITCH = {"settle_s": 0.5}


def follow(drv: CpaDriver, settle: Settle, poll_s: float = 0.05) -> tuple[bool, str]:
    """Drive a switch's Settle as the worker does, refresh by refresh: (reached, outcome)."""
    deadline = time.monotonic() + settle.within_s
    while True:
        values = drv.refresh()
        outcome = settle.reached(values)
        if outcome is not None:
            return True, outcome
        if time.monotonic() >= deadline:
            followup = settle.on_timeout(drv, values)
            if not isinstance(followup, Settle):
                return False, followup
            settle, deadline = followup, time.monotonic() + followup.within_s
        time.sleep(poll_s)


def switch(drv: CpaDriver, on: bool) -> Settle:
    return drv.switch(on, drv.read_state(), **SWITCH)


def switched(drv: CpaDriver, on: bool) -> int:
    reached, outcome = follow(drv, switch(drv, on))
    assert reached, outcome
    return drv.read_state()


@pytest.fixture
def make_sim():
    sims: list[CpaSimulator] = []

    def make(**kwargs) -> CpaSimulator:
        sim = CpaSimulator(**{**FAST, **kwargs}).start()
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture
def make_driver():
    drivers: list[CpaDriver] = []

    def make(url: str, **kwargs) -> CpaDriver:
        # A reply timeout a loaded machine does not reach by accident (tests of silence and of
        # late replies go beyond it on purpose).
        drv = CpaDriver(url, **{"timeout": REPLY_TIMEOUT_S, "retries": 0, **kwargs})
        drivers.append(drv)
        drv.connect()
        return drv

    yield make
    for drv in drivers:
        drv.close()


@pytest.fixture
def sim(make_sim):
    return make_sim()


@pytest.fixture
def drv(sim, make_driver):
    return make_driver(sim.url)


def wait_for_state(drv: CpaDriver, codes: set[int]) -> int:
    return wait_for(drv.read_state, lambda code: code in codes, what=f"panel state in {codes}")


def start_writes(sim: CpaSimulator) -> int:
    """FC06 start requests the simulator received over TCP (MBAP: unit 1)."""
    return sim.received_bytes().count(bytes.fromhex("0006 01 06 0001 0001"))


# -- refresh ---------------------------------------------------------------------------------


def test_refresh_over_modbus_tcp(sim, drv):
    assert drv.block_count == 53  # a CPA2-format panel refuses the 55-register read
    values = drv.refresh()
    model = sim.values()
    assert values["OperatingStateCode"] == 0 and values["CompressorRunning"] is False
    assert values["HighPressure"] == pytest.approx(model["HighPressure"], rel=1e-6)
    assert values["CoolantInTemperature"] == pytest.approx(model["CoolantInTemperature"])
    assert values["DeltaPressureAverage"] < 0  # equalised and stopped
    assert (values["Model"], values["PanelSerialNumber"]) == ("CPA1114", 1234)
    assert values["Warnings"] == [] and values["AlarmCode"] == 0


def test_one_refresh_is_one_block_read_from_pdu_1(sim, drv):
    sim.received_bytes(clear=True)
    drv.refresh()
    sent = sim.received_bytes()
    assert len(sent) == 12  # one Modbus TCP request
    assert sent[2:] == bytes.fromhex("0000 0006 01 04 0001 0035")


def test_refresh_over_rtu_through_a_gateway_with_paced_bytes(make_sim, make_driver):
    sim = make_sim(framer="rtu", baudrate=115200, cpa3=True)
    drv = make_driver(f"rtu+tcp://127.0.0.1:{sim.port}")
    assert drv.unit_id == 16 and drv.block_count == 55
    values = drv.refresh()
    assert values["SoftwareRevision"] == "3.2.5"
    assert values["LowPressure"] == pytest.approx(sim.values()["LowPressure"], rel=1e-6)
    sim.received_bytes(clear=True)
    drv.refresh()
    request = bytes.fromhex("10 04 0001 0037")  # unit 16, FC04, PDU 1, 55 registers
    assert sim.received_bytes() == request + crc16(request)


def test_rtu_wire_bytes_match_the_vendor_frames(make_sim, make_driver):
    sim = make_sim(framer="rtu")
    drv = make_driver(f"rtu+tcp://127.0.0.1:{sim.port}", block_count=53)
    sim.received_bytes(clear=True)
    drv.refresh()
    drv.write_start_stop(True)
    drv.write_start_stop(False)
    assert sim.received_bytes() == bytes.fromhex(
        "10 04 00 01 00 35 62 9C"  # docs/cryomech-cpa-modbus.md §1.4
        "10 06 00 01 00 01 1A 8B"
        "10 06 00 01 00 FF 9B 0B"
    )


def test_vendor_stop_value_is_configurable(make_sim, make_driver):
    sim = make_sim(framer="rtu")
    drv = make_driver(f"rtu+tcp://127.0.0.1:{sim.port}", stop_value=p.STOP_VENDOR)
    sim.received_bytes(clear=True)
    drv.write_start_stop(False)
    assert sim.received_bytes() == bytes.fromhex("10 06 00 01 FF FF DA FB")


def test_serial_url_uses_the_rtu_serial_client(make_sim, make_driver):
    # Anything after serial:// goes to pyserial, whose socket:// port reaches the simulator.
    sim = make_sim(framer="rtu", unit_id=16)
    drv = make_driver(f"serial://socket://127.0.0.1:{sim.port}", baudrate=115200)
    assert drv.refresh()["Model"] == "CPA1114"


def test_cpa3_panel_gives_integer_masks(make_sim, make_driver):
    sim = make_sim(cpa3=True)
    drv = make_driver(sim.url)
    sim.set_warnings(1 << 24 | 1)  # beyond float32 precision together
    values = drv.refresh()
    assert values["WarningCode"] == 1 << 24 | 1
    assert values["Warnings"] == ["Coolant in temperature high", "High pressure sensor fault"]


def test_units_are_the_drivers_not_the_panels(make_sim, make_driver):
    sim = make_sim()
    kelvin = make_driver(sim.url, temperature_unit="K", pressure_unit="psi")
    celsius = make_driver(sim.url)
    k, c = kelvin.refresh(), celsius.refresh()
    assert k["CoolantInTemperature"] == pytest.approx(c["CoolantInTemperature"] + 273.15)
    assert k["HighPressure"] == pytest.approx(c["HighPressure"] / 0.0689475729, rel=1e-6)


def test_panel_scale_switch_does_not_change_converted_values(sim, drv):
    before = drv.refresh()
    sim.set_scales(pressure=0, temperature=0)
    after = drv.refresh()
    assert (after["PressureScale"], after["TemperatureScale"]) == ("psi", "degF")
    for reg in p.ANALOG:
        assert after[reg.name] == pytest.approx(before[reg.name], rel=1e-5, abs=1e-4), reg.name
    sim.set_scales(pressure=2, temperature=2)
    kelvin_kpa = drv.refresh()
    assert (kelvin_kpa["PressureScale"], kelvin_kpa["TemperatureScale"]) == ("kPa", "K")
    assert kelvin_kpa["HighPressure"] == pytest.approx(before["HighPressure"], rel=1e-5)


def test_drivers_on_one_endpoint_share_one_link(sim, make_driver):
    a, b = make_driver(sim.url), make_driver(sim.url)
    assert a._link is b._link
    assert a.refresh()["Model"] == b.refresh()["Model"]


# -- start / stop ------------------------------------------------------------------------------


def test_start_then_stop_follow_the_state_sequence(sim, drv):
    assert switched(drv, True) in p.STARTING_OR_RUNNING
    assert wait_for_state(drv, {3}) == 3
    running = drv.refresh()
    assert running["CompressorRunning"] is True and running["MotorCurrent"] > 5.0
    assert switched(drv, False) in p.STOPPING_OR_IDLE
    assert wait_for_state(drv, {0}) == 0
    assert start_writes(sim) == 1


def test_start_ignored_once_is_resent_and_succeeds(sim, drv):
    sim.ignore_next_start(1)
    settle = switch(drv, True)
    assert start_writes(sim) == 1  # the command returns after its one write
    assert follow(drv, settle)[0] and drv.read_state() in p.STARTING_OR_RUNNING
    assert start_writes(sim) == 2


def test_start_ignored_twice_is_reported_with_state_and_alarms(sim, drv):
    sim.ignore_next_start(2)
    reached, message = follow(drv, switch(drv, True))
    assert not reached
    assert "start not obeyed (0x0001 to 40001, resent 1 time(s))" in message
    assert "panel still IdlingReadyToStart (state 0)" in message and "alarms: none" in message
    assert start_writes(sim) == 2


def test_no_automatic_resend_while_alarms_are_present(sim, drv):
    sim.set_alarms(64)  # helium high: the compressor trips to state 7
    sim.ignore_next_start(1)
    reached, message = follow(drv, switch(drv, True))
    assert not reached and "resent" not in message
    assert "panel still Error (state 7)" in message and "Helium temperature high" in message
    assert start_writes(sim) == 1


def test_start_resets_a_latched_error(sim, drv):
    sim.set_alarms(64)
    assert drv.refresh()["OperatingStateCode"] == 7
    assert switched(drv, True) in p.STARTING_OR_RUNNING
    assert drv.refresh()["AlarmCode"] == 0


def test_start_is_refused_during_lockout(sim, drv):
    sim.lockout()
    with pytest.raises(CommandRefused, match="lockout menu.*30-minute"):
        switch(drv, True)
    assert start_writes(sim) == 0


def test_six_trips_lock_the_panel_out(sim, drv):
    for _ in range(6):
        sim.set_alarms(1)
    assert drv.refresh()["OperatingStateCode"] == p.LOCKOUT
    sim.clear_faults()
    assert drv.refresh()["OperatingStateCode"] == 0


def test_stop_of_a_faulted_compressor_is_accepted(sim, drv):
    sim.set_alarms(2)
    assert switched(drv, False) == 7


def test_holding_register_reads_back_the_last_command(sim, drv):
    drv.write_start_stop(True)
    reply = drv._transaction("FC03", 0x03, lambda c: c.read_holding_registers(1, count=1, device_id=1))
    assert reply.registers == [p.START]


def test_running_compressor_builds_pressure_and_heats_up(make_sim, make_driver):
    sim = make_sim(time_scale=200.0)  # 1 s of wall time = 200 s of compressor time
    drv = make_driver(sim.url)
    idle = drv.refresh()
    switched(drv, True)
    wait_for_state(drv, {3})
    wait_for(
        drv.refresh,
        lambda warm: warm["HighPressure"] > idle["HighPressure"] + 2.0  # ~20 bar running, 16 static
        and warm["LowPressure"] < idle["LowPressure"] - 5.0  # ~6 bar running
        and warm["HeliumTemperature"] > idle["HeliumTemperature"] + 10.0
        and warm["HoursOfOperation"] > idle["HoursOfOperation"],
        what="pressures and helium temperature of a running compressor",
    )
    switched(drv, False)
    wait_for_state(drv, {0})
    stopped = wait_for(
        drv.refresh,
        lambda v: abs(v["HighPressure"] - v["LowPressure"]) < 1.0,  # equalising
        what="pressures equalising after the stop",
    )
    assert stopped["MotorCurrent"] < 1.0


def test_driver_under_the_io_worker_survives_an_outage(sim):
    worker = IOWorker("cpa", CpaDriver(sim.url, timeout=REPLY_TIMEOUT_S, retries=0), refresh_period_s=0.05)
    worker.start()
    try:
        wait_for(lambda: worker.comm is Comm.CONNECTED and worker.snapshot.values, what="first values")
        assert worker.submit(lambda d: switch(d, True), what="On").result(30) is None
        wait_for(lambda: worker.settling is None, what="the start followed")
        assert "compressor" in worker.last_result
        sim.set_online(False)
        wait_for(lambda: worker.comm is Comm.LOST, what="the link marked lost")
        sim.set_online(True)
        wait_for(lambda: worker.comm is Comm.CONNECTED, what="reconnection")
        wait_for(lambda: worker.snapshot.values.get("OperatingStateCode") == 3, what="running again")
    finally:
        worker.stop()


# -- communication faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, words", [(2, "0x02 (illegal data address)"), (4, "0x04 (server device failure)")]
)
def test_exception_reply_is_a_comm_error_with_a_clear_message(sim, drv, code, words):
    sim.set_exception(code)
    with pytest.raises(ModbusReplyError) as err:
        drv.refresh()
    assert isinstance(err.value, CommError) and err.value.code == code
    assert str(err.value) == (
        f"Modbus exception {words} from unit 1 to FC04 read of 53 input registers at PDU 1"
    )
    sim.set_exception(None)
    assert drv.refresh()["Model"] == "CPA1114"


def test_busy_panel_is_not_taken_for_a_cpa2_panel(make_sim):
    sim = make_sim(cpa3=True)
    sim.set_exception(6)
    drv = CpaDriver(sim.url, timeout=REPLY_TIMEOUT_S)
    with pytest.raises(ModbusReplyError, match="0x06 .*55 input registers"):
        drv.connect()
    sim.set_exception(None)
    drv.connect()
    assert drv.block_count == 55
    drv.close()


def test_exception_reply_to_the_start_write_is_the_panels_refusal(sim, drv):
    """The panel answered: a refusal (CommandRefused naming the exception), not a lost link."""
    sim.set_exception(6)
    with pytest.raises(PanelRefused, match="0x06 .*FC06 write of 0x0001 to 40001") as err:
        drv.write_start_stop(True)
    assert isinstance(err.value, CommandRefused) and not isinstance(err.value, CommError)
    assert drv._link.is_open  # the link stays up
    sim.set_exception(None)
    assert drv.refresh()["Model"] == "CPA1114"


def test_offline_panel_then_recovery(sim, drv):
    drv.refresh()
    sim.set_online(False)
    with pytest.raises(CommError):
        drv.refresh()
    drv.close()
    with pytest.raises(CommError):
        drv.connect()
    sim.set_online(True)
    drv.connect()
    assert drv.refresh()["Model"] == "CPA1114"


def test_dropped_connection_is_reported_then_reopened(sim, drv):
    drv.refresh()
    sim.drop_connections()
    with pytest.raises(CommError):
        drv.refresh()
    assert drv.refresh()["Model"] == "CPA1114"


def test_late_reply_is_a_timeout_and_never_answers_the_next_request(sim, drv):
    sim.set_delay(2 * REPLY_TIMEOUT_S)
    with pytest.raises(CommError, match="No response"):
        drv.refresh()
    sim.set_delay(0.0)
    assert drv.read_state() == 0  # a stale 53-register reply would not fit a 1-register read
    assert len(drv.refresh()) > 0


def test_nothing_listening_is_a_comm_error():
    drv = CpaDriver(f"tcp://127.0.0.1:{free_ports(1)}", timeout=REPLY_TIMEOUT_S)
    with pytest.raises(CommError, match="cannot"):
        drv.connect()
    drv.close()


def test_wrong_unit_behind_a_gateway(make_sim, make_driver):
    sim = make_sim(framer="rtu", unit_id=16)
    drv = CpaDriver(f"rtu+tcp://127.0.0.1:{sim.port}", unit_id=3, timeout=REPLY_TIMEOUT_S)
    with pytest.raises(ModbusReplyError, match="0x0B .*from unit 3"):
        drv.connect()
    drv.close()


def test_refresh_before_connect_is_a_comm_error():
    with pytest.raises(CommError, match="not connected"):
        CpaDriver("tcp://127.0.0.1:1", block_count=53).refresh()


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, match",
    [
        ("http://host", "scheme"),
        ("host:502", "scheme"),
        ("tcp://:502", "no host"),
        ("rtu+tcp://gateway", "port"),
        ("tcp://host:99999", "port"),
        ("serial://", "expected tcp://"),
        ("tcp://host:502/x", "path"),
    ],
)
def test_bad_urls_are_rejected(url, match):
    with pytest.raises(ValueError, match=match):
        CpaDriver(url)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"unit_id": 248, "url": "serial:///dev/ttyUSB0"}, "unit id"),
        ({"unit_id": 256}, "unit id"),
        ({"parity": "X"}, "parity"),
        ({"stopbits": 3}, "stop bits"),
        ({"timeout": 0}, "timeout"),
        ({"block_count": 54}, "block count"),
        ({"stop_value": p.START}, "stop value"),
        ({"temperature_unit": "C"}, "TemperatureUnit"),
        ({"pressure_unit": "mbar"}, "PressureUnit"),
    ],
)
def test_bad_settings_are_rejected_before_the_wire(kwargs, match):
    url = kwargs.pop("url", "tcp://127.0.0.1")
    with pytest.raises(ValueError, match=match):
        CpaDriver(url, **kwargs)


def test_default_units_and_ports():
    assert CpaDriver("tcp://panel").unit_id == 1
    assert CpaDriver("tcp://panel").key == "tcp://panel:502"
    assert CpaDriver("rtu+tcp://gw:4001").unit_id == 16
    assert CpaDriver("serial:///dev/ttyUSB0").unit_id == 16


def crc16(frame: bytes) -> bytes:
    """Modbus RTU CRC as it goes on the wire (pymodbus's own, high byte first)."""
    return FramerRTU.compute_CRC(frame).to_bytes(2, "big")
