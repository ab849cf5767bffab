"""Cole-Parmer chiller driver against corrupted replies and bad input (issue 9): an independent
fake on a fresh pseudo-terminal per reply for the fuzz, the simulator for the bad-input table."""

from __future__ import annotations

import math

import pytest

from plantds.devices.coleparmer import protocol
from plantds.devices.coleparmer.driver import NcDriver
from plantds.devices.coleparmer.simulator import ChillerSimulator
from plantds.server import fuzzing
from plantds.server.links import CommError

FUZZ_REPLIES = 10_000


@pytest.mark.parametrize("family", ["Polystat", "RTE"])
def test_corrupted_replies_never_become_values(family):
    """Issue 9: 285 of 40,000 corrupted Polystat replies were accepted (5 data bytes)."""
    report = fuzzing.fuzz_chiller(FUZZ_REPLIES // 2, family=family)
    print("\n".join(report.lines()))
    assert not report.unexpected, report.unexpected[:3]
    assert report.wrong_detectable == 0, report.lines()


def test_five_data_bytes_on_a_polystat_are_refused_on_the_wire():
    five = protocol.Frame(0xCA, 1, 0x70, protocol.encode_reading(13110897, 1, width=4)).encode()
    replies = iter((protocol.Frame(0xCA, 1, 0, b"\x00\x01").encode(), five))
    with fuzzing._PtyFake(lambda request: next(replies)) as path:
        driver = NcDriver(path, family="Polystat", timeout=0.3, retries=0)
        try:
            driver.connect()
            with pytest.raises(CommError, match="5 data bytes"):
                driver.read("Setpoint")
        finally:
            driver.close()


BAD_VALUES = [math.nan, math.inf, -math.inf, 1e9, -1e9, "20", None, True, [20.0], "20\0"]
WRITABLE = sorted({name for family in protocol.FAMILIES.values()
                   for name, parameter in family.parameters.items() if parameter.set is not None})


@pytest.fixture(scope="module")
def chiller():
    with ChillerSimulator(port=0, family="Polystat") as sim:
        driver = NcDriver(sim.url, family="Polystat", timeout=0.5, retries=0)
        driver.connect()
        yield sim, driver
        driver.close()


@pytest.mark.parametrize("name", WRITABLE)
@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
def test_bad_writes_put_nothing_on_the_wire(chiller, name, value):
    sim, driver = chiller
    if name not in driver.family.parameters:
        pytest.skip(f"a Polystat has no {name}")
    sent = len(sim.requests)
    with pytest.raises(ValueError):
        driver.write(name, value)
    assert len(sim.requests) == sent


@pytest.mark.parametrize("name", ["Nope", "Setpoint\0", "x" * 100_000, "", "InternalTemperature",
                                  "ExternalTemperature"])
def test_unknown_and_read_only_names_put_nothing_on_the_wire(chiller, name):
    sim, driver = chiller
    sent = len(sim.requests)
    with pytest.raises(ValueError):
        driver.write(name, 20.0)
    assert len(sim.requests) == sent


def test_a_value_the_precision_cannot_carry_sends_no_set_frame(chiller):
    sim, driver = chiller
    sent = len(sim.requests)
    with pytest.raises(ValueError, match="cannot be sent at 0.1 precision"):
        driver.write("Setpoint", 4000.0)  # fits whole degrees, not tenths
    assert all(frame[3] < 0x80 for frame in list(sim.requests)[sent:])  # reads only
