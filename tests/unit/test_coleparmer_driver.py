"""NC driver against the chiller simulator over real sockets (socket://) and a pseudo-terminal."""

from __future__ import annotations

import threading
import time

import pytest

from plantds.devices.coleparmer import protocol
from plantds.devices.coleparmer.driver import (
    CommandRefused,
    NcDriver,
    NcErrorReply,
    NoReply,
    PrecisionChanged,
    ValueClamped,
)
from plantds.devices.coleparmer.simulator import ChillerSimulator, add_arguments
from plantds.server import errors
from plantds.server.links import CommError
from plantds.server.testing import wait_for

SERIAL_MODE_HINT = "serial mode is enabled on the front panel"
# Tests that make the chiller silent on purpose shorten the manual's 1 s timeout to stay fast,
# but not so far that a loaded machine's late reply looks like silence.
SILENCE_TIMEOUT_S = 0.5
STATUS_KEYS = {"StatusFlags", "StatusSeverity", "StatusRaw", "Precision", "TemperatureUnit"}


@pytest.fixture
def make():
    """make(family=..., **sim_options) → (simulator, connected driver); both cleaned up.

    The manual's 1 s timeout by default; tests that provoke silence shorten it to stay fast.
    """
    sims, drivers = [], []

    def factory(family="Polystat", driver_options=None, url=None, **sim_options):
        sim = ChillerSimulator(family=family, **sim_options)
        sim.start()
        sims.append(sim)
        options = {"family": family, "timeout": 1.0, "retries": 2}
        options.update(driver_options or {})
        if "bus" in sim_options:
            options.setdefault("bus", sim_options["bus"])
            options.setdefault("address", sim_options.get("address", 1))
        driver = NcDriver(url or sim.url, **options)
        drivers.append(driver)
        driver.connect()
        return sim, driver

    yield factory
    for driver in drivers:
        driver.close()
    for sim in sims:
        sim.stop()


@pytest.mark.parametrize("family", sorted(protocol.FAMILIES))
def test_refresh_reports_the_family_attributes(make, family):
    sim, driver = make(family, setpoint=35.0)
    values = driver.refresh()
    fam = protocol.family(family)
    assert set(values) == set(fam.parameters) | set(fam.booleans) | STATUS_KEYS
    assert values["Setpoint"] == 35.0
    assert values["UnitOn"] is True
    assert values["Precision"] == 0.1 and values["TemperatureUnit"] == "degC"
    assert values["StatusSeverity"] is None
    assert values["HighTemperatureWarning"] == sim.value("HighTemperatureWarning")


@pytest.mark.parametrize(
    "precision,value,frame",
    [
        (0.1, 30.0, "CA 00 01 F0 02 01 2C DF"),
        (0.1, -10.5, "CA 00 01 F0 02 FF 97 76"),
        (0.1, 25.0, "CA 00 01 F0 02 00 FA 12"),
        (0.01, 20.0, "CA 00 01 F0 02 07 D0 35"),
        (1, 30.0, "CA 00 01 F0 02 00 1E EE"),
    ],
)
def test_setpoint_write_sends_the_manuals_bytes(make, precision, value, frame):
    sim, driver = make("Polystat", precision=precision)
    assert driver.write("Setpoint", value) == value
    assert bytes.fromhex(frame) in sim.requests
    assert sim.value("Setpoint") == value


def test_low_limit_write_bytes(make):
    sim, driver = make("RTE")
    driver.write("LowTemperatureWarning", -5.0)
    assert sim.requests[-1] == bytes.fromhex("CA 00 01 C0 02 FF CE 6F")


def test_write_reads_the_precision_first(make):
    sim, driver = make("Polystat", precision=0.01)
    sim.requests.clear()
    driver.write("Setpoint", 30.0)
    assert list(sim.requests) == [bytes.fromhex("CA 00 01 70 00 8E"), protocol.set_request(0xF0, 30.0, 2)]


def test_write_uses_each_parameters_precision(make):
    sim, driver = make("Polystat", precision=1)
    assert driver.write("HeatIntegral", 1.23) == 1.23  # 0.01 even on a whole-degree unit
    assert sim.requests[-1] == protocol.set_request(0xF2, 1.23, 2)
    assert driver.write("HeatProportionalBand", 2.45) == 2.5  # rounded, not truncated, at 0.1


def test_write_rounded_to_precision_is_not_a_clamp(make):
    sim, driver = make("Polystat", precision=0.1)
    assert driver.write("Setpoint", 30.04) == 30.0


def test_clamped_write_reports_the_stored_value(make):
    sim, driver = make("Polystat", temperature_range=(-20.0, 100.0))
    with pytest.raises(ValueClamped, match="stored 100 instead of 400") as info:
        driver.write("Setpoint", 400.0)
    assert info.value.accepted == 100.0 and info.value.requested == 400.0
    assert sim.value("Setpoint") == 100.0
    with pytest.raises(ValueClamped, match="stored 0.1 instead of 0"):
        driver.write("CoolProportionalBand", 0.0)


def test_value_out_of_the_nc_range_never_reaches_the_wire(make):
    sim, driver = make("Polystat", precision=0.1)
    sent = len(sim.requests)
    with pytest.raises(ValueError, match="-3276.8 … 3276.7"):
        driver.write("Setpoint", 4000.0)
    # Only the read of the precision went out, never a set frame.
    assert [frame[3] for frame in list(sim.requests)[sent:]] == [0x70]


def test_write_encodes_at_the_precision_read_in_the_same_job(make):
    """Issue 9: a write used a precision cached up to 30 s ago and was then off by 10×."""
    sim, driver = make("Polystat", precision=0.1)
    driver.refresh()  # the driver has seen Setpoint at 0.1
    sim.set_precision(0.01)  # the front panel switches to hundredths
    assert driver.write("Setpoint", 25.0) == 25.0
    assert sim.value("Setpoint") == 25.0


def test_read_only_and_unknown_parameters(make):
    sim, driver = make("Merlin")
    with pytest.raises(ValueError, match="read-only"):
        driver.write("InternalTemperature", 20.0)
    with pytest.raises(ValueError, match="Merlin has no ExternalTemperature"):
        driver.read("ExternalTemperature")


def test_precision_changed_earlier_is_read_before_the_write(make):
    sim, driver = make("RTE", precision=0.1)
    driver.read("Setpoint")
    sim.set_precision(0.01)
    assert driver.write("Setpoint", 25.0) == 25.0
    assert sim.requests[-1] == protocol.set_request(0xF0, 25.0, 2)


def test_silence_on_connect_suggests_serial_mode(make):
    sim, driver = make("RTE", driver_options={"timeout": SILENCE_TIMEOUT_S, "retries": 1, "baudrate": 19200})
    sim.set_serial_mode(False)
    driver.close()
    with pytest.raises(NoReply, match=SERIAL_MODE_HINT) as info:
        driver.connect()
    assert "address 1" in str(info.value) and "19200" in str(info.value)
    assert isinstance(info.value, CommError)


def test_recovery_after_silence(make):
    sim, driver = make("Polystat", driver_options={"timeout": SILENCE_TIMEOUT_S, "retries": 1})
    sim.set_serial_mode(False)
    with pytest.raises(NoReply, match=SERIAL_MODE_HINT):
        driver.refresh()
    sim.set_serial_mode(True)
    assert driver.refresh()["Setpoint"] == 20.0  # same link, no reconnect needed
    driver.close()
    driver.connect()
    assert driver.refresh()["Setpoint"] == 20.0


def test_corrupt_replies_are_resent(make):
    sim, driver = make("Polystat", setpoint=12.3)
    sim.corrupt_next(2)
    assert driver.read("Setpoint").value == 12.3
    assert driver.bad_replies == 2


def test_corrupt_replies_never_become_values(make):
    sim, driver = make("Polystat", setpoint=12.3)
    sim.corrupt_next(3)  # one more than retries allow
    with pytest.raises(CommError, match="checksum") as info:
        driver.read("Setpoint")
    assert not isinstance(info.value, NoReply)
    assert driver.read("Setpoint").value == 12.3


def test_noise_before_replies_is_skipped(make):
    sim, driver = make("RTE", setpoint=-7.5, seed=3)
    sim.set_noise(1.0)
    for _ in range(10):
        values = driver.refresh()
        assert values["Setpoint"] == -7.5
        assert values["StatusFlags"][:2] == ["unit on", "pump on"]
    assert driver.stray_bytes >= 40  # 1–4 stray bytes before each of ≥ 40 replies
    assert driver.bad_replies == 0


@pytest.mark.parametrize("family,code", [("Polystat", 2), ("RTE", 3), ("ThermoFlex", 3)])
def test_bad_checksum_error_reply_is_resent(make, family, code):
    sim, driver = make(family)
    sim.error_next(code, 2)
    assert driver.write("Setpoint", 31.0) == 31.0


def test_bad_command_error_reply_is_not_a_link_failure(make):
    sim, driver = make("Polystat")
    sim.error_next(1, command=0xF0)
    with pytest.raises(NcErrorReply, match="error 01 \\(bad command\\) to command F0") as info:
        driver.write("Setpoint", 31.0)
    assert not isinstance(info.value, CommError)
    assert info.value.error.kind == protocol.BAD_COMMAND


def test_thermoflex_bad_data_is_reported(make):
    sim, driver = make("ThermoFlex")
    sim.error_next(2, command=0xF0)
    with pytest.raises(NcErrorReply, match="bad data"):
        driver.write("Setpoint", 31.0)


def test_unknown_error_number_is_reported_raw(make):
    sim, driver = make("RTE")
    sim.error_next(7)
    with pytest.raises(NcErrorReply, match="error 07 \\(not in the manual\\)"):
        driver.read("Setpoint")


def test_parameters_the_unit_lacks_become_invalid(make):
    # A Merlin configured as a Polystat: no external sensor and no heat PID ("bad command").
    sim, driver = make("Merlin", driver_options={"family": "Polystat"})
    values = driver.refresh()
    assert values["ExternalTemperature"] is None and values["HeatIntegral"] is None
    assert values["CoolIntegral"] == sim.value("CoolIntegral")
    sent = len(sim.requests)
    driver.refresh()
    assert len(sim.requests) - sent == 3  # internal temperature, set point, status


def test_wrong_family_status_length(make):
    sim, driver = make("Polystat", driver_options={"family": "RTE"})
    with pytest.raises(errors.ConfigMismatch, match="2 bytes; RTE sends 5: check the Family property"):
        driver.read_status()


def test_a_transient_bad_command_is_retried_at_the_slow_period_and_counted(make):
    """Issue 9: one "bad command" reply disabled a parameter until Init, silently."""
    sim, driver = make("Polystat", driver_options={"slow_refresh_s": 0.0})
    sim.error_next(1)  # the next request (InternalTemperature) is refused once
    assert driver.refresh()["InternalTemperature"] is None
    assert driver.refused_reads == 1
    assert driver.refresh()["InternalTemperature"] == sim.value("InternalTemperature")


def test_a_value_reply_length_the_family_never_sends_is_refused():
    """Issue 9: 5 data bytes on a Polystat value reply read as 1,311,089.7 degC."""
    five = protocol.encode_reading(13110897, 1, width=4)
    with pytest.raises(protocol.FrameError, match="5 data bytes"):
        protocol.decode_reading(five, protocol.family("Polystat").value_lengths)
    assert protocol.decode_reading(five, protocol.family("ThermoFlex").value_lengths).raw == 13110897


def test_slow_values_are_read_when_due_and_after_a_write(make):
    sim, driver = make("Polystat", driver_options={"slow_refresh_s": 3600})
    first = driver.refresh()
    sim.requests.clear()
    second = driver.refresh()
    assert len(sim.requests) == 4  # internal, external, set point, status
    assert second["HeatIntegral"] == first["HeatIntegral"]  # kept between slow reads
    driver.write("HeatIntegral", 1.5)
    sim.requests.clear()
    assert driver.refresh()["HeatIntegral"] == 1.5
    assert len(sim.requests) == 4 + 10  # the limits and PID terms again


def test_slow_values_are_reread_when_the_period_elapses(make):
    sim, driver = make("Merlin", driver_options={"slow_refresh_s": 0.0})
    driver.refresh()
    sim.requests.clear()
    driver.refresh()
    assert len(sim.requests) == 3 + 5


def test_on_off_and_status(make):
    sim, driver = make("RTE")
    assert driver.set_on(False)["unit on"] is False
    assert sim.requests[-1] == bytes.fromhex("CA 00 01 81 08 00 02 02 02 02 02 02 02 67")
    values = driver.refresh()
    assert values["UnitOn"] is False and values["PumpOn"] is False
    settings = driver.set_on(True)
    assert settings["unit on"] and settings["serial comm"]
    assert driver.refresh()["UnitOn"] is True


def test_faulted_unit_refuses_to_start(make):
    sim, driver = make("Polystat")
    sim.set_fault("chiller faulted")
    values = driver.refresh()
    assert values["StatusSeverity"] == "fault" and values["UnitOn"] is False
    assert values["StatusFlags"] == ["chiller faulted"]
    with pytest.raises(CommandRefused, match="unit off after the On request; its status: chiller faulted"):
        driver.set_on(True)
    sim.clear()
    driver.set_on(True)
    assert driver.refresh()["StatusFlags"] == ["chiller running"]


@pytest.mark.parametrize(
    "family,method,bit,severity",
    [
        ("RTE", "set_warning", "high temp warn", "warning"),
        ("RTE", "set_fault", "low level fault", "fault"),
        ("EX", "set_fault", "HTC fault", "fault"),
        ("ThermoFlex", "set_warning", "high temp fault or warn", "warning"),
        ("ThermoFlex", "set_fault", "high temp fault or warn", "fault"),
        ("ThermoFlex", "set_fault", "local EMO fault", "fault"),
    ],
)
def test_status_severity_per_family(make, family, method, bit, severity):
    sim, driver = make(family)
    getattr(sim, method)(bit)
    values = driver.refresh()
    assert bit in values["StatusFlags"]
    assert values["StatusSeverity"] == severity
    assert values["UnitOn"] is (severity == "warning")


def test_simulator_rejects_bits_of_the_wrong_kind():
    sim = ChillerSimulator("RTE")
    with pytest.raises(ValueError, match="warning, not fault"):
        sim.set_fault("high temp warn")
    with pytest.raises(ValueError, match="no status bit"):
        sim.set_warning("boiler on fire")


def test_on_off_array_length_is_learned(make):
    # A Merlin on firmware 02950.1J–K takes only the 5-byte array.
    sim, driver = make("Merlin", on_off_length=5)
    assert driver.set_on(False) == {"unit on": False, "d2": False, "d3": False, "d4": False,
                                    "d5": False}
    sim.requests.clear()
    driver.set_on(True)
    assert list(sim.requests) == [bytes.fromhex("CA 00 01 81 05 01 02 02 02 02 6F")]


def test_rte_serial_comm_off_silences_the_unit(make):
    sim, driver = make("RTE", driver_options={"timeout": SILENCE_TIMEOUT_S, "retries": 0})
    reply = sim.respond(bytes.fromhex("CA 00 01 81 08 02 02 02 02 02 02 02 00 67"))  # d8 = 0: make local
    assert protocol.decode_on_off("RTE", protocol.decode_frame(reply).data)["serial comm"] is False
    with pytest.raises(NoReply):
        driver.read_acknowledge()


def test_rs485_address(make):
    sim, driver = make("RTE", bus="RS485", address=7)
    assert driver.read_acknowledge() == (0, 1)
    assert driver.write("Setpoint", 30.0) == 30.0
    assert sim.requests[-1] == protocol.set_request(0xF0, 30.0, 1, address=7, bus="RS485")


def test_other_addresses_on_the_line_get_no_reply(make):
    sim, _ = make("RTE", bus="RS485", address=7)
    other = NcDriver(sim.url, family="RTE", bus="RS485", address=8, timeout=0.1, retries=0)
    try:
        with pytest.raises(NoReply, match="address 8"):
            other.connect()
    finally:
        other.close()


def test_drivers_on_one_port_share_the_link_and_never_interleave(make):
    sim, first = make("Polystat", setpoint=15.0)
    second = NcDriver(sim.url, family="Polystat")
    second.connect()
    try:
        assert second._link is first._link
        errors: list[BaseException] = []

        def hammer(driver: NcDriver) -> None:
            try:
                for _ in range(20):
                    assert driver.refresh()["Setpoint"] == 15.0
            except BaseException as exc:  # reported to the main thread below
                errors.append(exc)

        threads = [threading.Thread(target=hammer, args=(d,)) for d in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        assert first.bad_replies == second.bad_replies == 0
    finally:
        second.close()


def test_pty_transport(make):
    sim, _ = make("ThermoFlex", setpoint=18.5)
    path = sim.open_pty()
    driver = NcDriver(path, family="ThermoFlex", timeout=SILENCE_TIMEOUT_S, retries=2)
    try:
        driver.connect()
        assert driver.refresh()["Setpoint"] == 18.5
        assert driver.write("Setpoint", 19.0) == 19.0
        sim.set_serial_mode(False)
        with pytest.raises(NoReply, match=SERIAL_MODE_HINT):
            driver.refresh()
        sim.set_serial_mode(True)
        sim.corrupt_next(1)
        assert driver.read("Setpoint").value == 19.0
    finally:
        driver.close()


def test_paced_replies(make):
    sim, driver = make("Polystat", baudrate=2400)
    start = time.monotonic()
    assert driver.read("Setpoint").value == 20.0
    # A lower bound only: a loaded machine can make the reply later, never earlier.
    assert time.monotonic() - start >= 8 * 10 / 2400  # 9 bytes: 8 byte times after the first


def test_bath_follows_the_setpoint(make):
    sim, driver = make("Polystat", setpoint=20.0, time_constant_s=0.2)
    driver.write("Setpoint", 40.0)
    internal = lambda: driver.read("InternalTemperature").value  # noqa: E731
    wait_for(internal, lambda t: t >= 39.9, what="the bath reaching the set point")
    driver.set_on(False)
    wait_for(internal, lambda t: t <= 22.1, what="the bath cooling to ambient when stopped")


def test_errors_map_to_the_shared_kinds():
    """The base device turns these into PlantDS_NotVerified / PlantDS_CommandRefused."""
    assert issubclass(ValueClamped, errors.NotVerified) and issubclass(PrecisionChanged, errors.NotVerified)
    assert issubclass(CommandRefused, errors.CommandRefused)
    assert issubclass(NcErrorReply, errors.CommandRefused) and not issubclass(NcErrorReply, CommError)
    assert issubclass(NoReply, CommError)


def test_reported_temperature_unit(make):
    sim, driver = make("ThermoFlex", temperature_unit="degF", setpoint=68.0)
    values = driver.refresh()
    assert values["TemperatureUnit"] == "degF" and values["Setpoint"] == 68.0
    sim, driver = make("RTE", temperature_unit="")  # RTE qualifiers 10/20: no unit
    assert driver.refresh()["TemperatureUnit"] == ""


def test_unreachable_port_is_a_comm_error():
    sim = ChillerSimulator()
    sim.start()
    url = sim.url
    sim.stop()
    driver = NcDriver(url, timeout=0.2)
    try:
        with pytest.raises(CommError, match="cannot open"):
            driver.connect()
    finally:
        driver.close()


def test_lost_connection_is_a_comm_error(make):
    sim, driver = make("Polystat")
    sim.stop()
    with pytest.raises(CommError):
        driver.refresh()
    assert not driver._link.is_open  # dropped, so the next transaction reopens


def test_not_connected():
    driver = NcDriver("socket://127.0.0.1:1")
    with pytest.raises(CommError, match="not connected"):
        driver.read("Setpoint")


def test_simulator_command_line():
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--port", "0", "--family", "RTE", "--precision", "0.01", "--pty"])
    assert (args.family, args.precision, args.pty, args.baud) == ("RTE", 0.01, True, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["--precision", "0.5"])
