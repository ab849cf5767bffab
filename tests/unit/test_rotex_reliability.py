"""Rotex heat pump driver against corrupted replies and bad input (issue 9): an independent
socketcand fake on a loopback socket for the fuzz, the simulator's bus for the bad-input table
(every frame our own id puts on the bus is seen)."""

from __future__ import annotations

import itertools
import math

import pytest

from plantds.devices.rotex import pyhpsu
from plantds.devices.rotex.driver import HpsuDriver
from plantds.devices.rotex.simulator import HpsuSimulator
from plantds.devices.rotex.table import load_commands
from plantds.server import fuzzing

FUZZ_REPLIES = 10_000
OWN_ID = 0x680
COMMANDS = load_commands()
WRITABLE = [cmd for cmd in COMMANDS.values() if cmd.writable]
READ_ONLY = next(cmd.name for cmd in COMMANDS.values() if not cmd.writable)
_channels = itertools.count()


def test_corrupted_replies_never_become_values():
    report = fuzzing.fuzz_heat_pump(FUZZ_REPLIES)
    print("\n".join(report.lines()))
    assert not report.unexpected, report.unexpected[:3]
    assert report.wrong_detectable == 0, report.lines()


@pytest.fixture(scope="module")
def bus():
    sim = HpsuSimulator(channel=f"virtual://hpsu-reliability-{next(_channels)}", drift=False,
                        latency_s=0.002).start()
    driver = HpsuDriver(sim.urls[0], commands=["mode_01"], timeout=0.3, retries=0)
    driver.connect()
    yield sim, driver
    driver.close()
    sim.stop()


def sent_by_us(sim: HpsuSimulator) -> int:
    return len(sim.frames_from(OWN_ID))


def bad_values(cmd) -> list:
    low, high = (min(cmd.value_codes.values()), max(cmd.value_codes.values())) \
        if cmd.value_codes else (cmd.min, cmd.max)
    values = [math.nan, math.inf, -math.inf, None, [1], object(), b"1", "x" * 100_000,
              "heat\0", "1e999", 1e300]
    if high is not None:
        values.append(high + 1000)
    if low is not None:
        values.append(low - 1000)
    if cmd.value_codes:
        codes = set(cmd.value_codes.values())
        values += [next(c for c in range(1000) if c not in codes), low + 0.5, "no such label"]
    return values


@pytest.mark.parametrize("cmd", WRITABLE, ids=lambda cmd: cmd.name)
def test_bad_writes_put_nothing_on_the_bus(bus, cmd):
    sim, driver = bus
    for value in bad_values(cmd):
        sent = sent_by_us(sim)
        with pytest.raises(ValueError):
            # What a client types goes through pyHPSU's parser first, like WriteValue does.
            driver.write(cmd.name, pyhpsu.parse_value(cmd, value) if isinstance(value, str)
                         else value)
        assert sent_by_us(sim) == sent, (cmd.name, value)


def test_mode_3_5_is_refused_not_rounded_to_reduced(bus):
    """Issue 9: WriteValue ["mode_01", "3.5"] switched the heat pump to mode 4, "reduced"."""
    sim, driver = bus
    sent = sent_by_us(sim)
    with pytest.raises(ValueError, match="not one of its codes"):
        driver.write("mode_01", pyhpsu.parse_value(COMMANDS["mode_01"], "3.5"))
    assert sent_by_us(sim) == sent and sim.value("mode_01") == 3
    assert driver.write("mode_01", "reduced") == 4  # the control: a code goes out
    assert sent_by_us(sim) > sent
    driver.write("mode_01", 3)


@pytest.mark.parametrize("name", ["nope", "t_hs\0", "x" * 100_000, "", READ_ONLY])
def test_unknown_and_read_only_names_put_nothing_on_the_bus(bus, name):
    sim, driver = bus
    sent = sent_by_us(sim)
    with pytest.raises(ValueError):
        driver.write(name, 1)
    if name != READ_ONLY:
        with pytest.raises(ValueError):
            driver.read(name)
    assert sent_by_us(sim) == sent
