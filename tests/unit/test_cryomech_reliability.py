"""Cryomech CPA driver against corrupted replies and bad input (issue 9), on real loopback
sockets with an independent fake panel (server/fuzzing.py) — no pymodbus server involved."""

from __future__ import annotations

import math

import pytest

from plantds.devices.cryomech import protocol as p
from plantds.devices.cryomech.driver import CpaDriver, WrongReply
from plantds.server import fuzzing
from plantds.server.errors import ConfigMismatch

FUZZ_REPLIES = 10_000


class FakePanel:
    """Modbus TCP panel answering every request with ``reply(request)``; keeps the requests."""

    def __init__(self, reply):
        self.requests: list[bytes] = []

        def respond(request: bytes) -> tuple[bytes, bool]:
            self.requests.append(request)
            return reply(request), False

        def length(buffer: bytes) -> int | None:
            return 6 + int.from_bytes(buffer[4:6], "big") if len(buffer) >= 6 else None

        self.server = fuzzing.OneShotServer(respond, length)
        self.url = f"tcp://127.0.0.1:{self.server.port}"

    def tids(self) -> list[int]:
        return [int.from_bytes(r[:2], "big") for r in self.requests]


def block_values() -> dict:
    values = {r.name: 10.0 + i for i, r in enumerate(p.ANALOG)}
    values.update(OperatingStateCode=0, CompressorRunning=False, WarningCode=0, AlarmCode=0,
                  PanelSerialNumber=1234, Model="CPA1114", SoftwareRevision="2.154")
    return values


def reply_with(fc: int, words: list[int]):
    data = b"".join(w.to_bytes(2, "big") for w in words)

    def reply(request: bytes) -> bytes:
        pdu = bytes((fc, len(data))) + data if fc in (3, 4) else \
            bytes((6,)) + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
        return request[:4] + (len(pdu) + 1).to_bytes(2, "big") + request[6:7] + pdu

    return reply


@pytest.fixture
def panels():
    made: list[tuple[FakePanel, CpaDriver]] = []

    def make(reply) -> tuple[FakePanel, CpaDriver]:
        panel = FakePanel(reply)
        driver = CpaDriver(panel.url, timeout=0.5, retries=0, block_count=53)
        made.append((panel, driver))
        return panel, driver

    yield make
    for panel, driver in made:
        driver.close()
        panel.server.close()


def test_an_fc03_block_is_not_taken_for_the_fc04_block(panels):
    """Issue 9: an FC03 reply read as the FC04 block gave HighPressure 99.0 and 'running'."""
    panel, driver = panels(reply_with(3, p.encode_block(block_values())))
    driver.connect()
    with pytest.raises(WrongReply, match="function code 0x03"):
        driver.refresh()
    assert not driver._link.is_open  # dropped: nothing late is taken for the next request


def test_an_fc06_echo_is_not_taken_for_a_state(panels):
    """Issue 9: an FC06 echo (value 1) read as state 1, Starting."""
    panel, driver = panels(reply_with(6, []))
    driver.connect()
    with pytest.raises(WrongReply, match="function code 0x06"):
        driver.read_state()


def test_transaction_ids_keep_increasing_across_reconnects(panels):
    panel, driver = panels(reply_with(4, p.encode_block(block_values())))
    driver.connect()
    for _ in range(3):
        driver.refresh()
        driver._link.drop()  # what a failure does; the next request reconnects
    tids = panel.tids()
    assert len(tids) == 3 and tids == sorted(set(tids)), tids


def test_a_block_that_does_not_decode_names_the_property_to_check(panels):
    words = p.encode_block(block_values())
    words[p.REGISTER["PressureScale"].index] = 7  # no such scale: not a CPA register map
    panel, driver = panels(reply_with(4, words))
    driver.connect()
    with pytest.raises(ConfigMismatch, match="check the PanelFormat and UnitId properties"):
        driver.refresh()


def test_corrupted_replies_never_become_values():
    report = fuzzing.fuzz_cpa(FUZZ_REPLIES)
    print("\n".join(report.lines()))
    assert not report.unexpected, report.unexpected[:3]
    assert report.wrong_detectable == 0, report.lines()
    assert sum(t.sent for t in report.tallies.values()) == FUZZ_REPLIES


BAD_SETTINGS = [
    ({"unit_id": 256}, "unit id"), ({"unit_id": -1}, "unit id"),
    ({"baudrate": 0}, "baud"), ({"parity": "X"}, "parity"), ({"parity": "N\0"}, "parity"),
    ({"stopbits": 3}, "stop bits"), ({"timeout": math.nan}, "timeout"),
    ({"timeout": math.inf}, "timeout"), ({"timeout": 0}, "timeout"), ({"retries": -1}, "retries"),
    ({"temperature_unit": "C"}, "TemperatureUnit"), ({"pressure_unit": "bar\0"}, "PressureUnit"),
    ({"block_count": 54}, "block count"), ({"stop_value": p.START}, "stop value"),
    ({"stop_value": 0x10000}, "stop value"),
]


@pytest.mark.parametrize("settings, message", BAD_SETTINGS)
def test_bad_settings_are_refused_before_anything_is_sent(settings, message):
    panel = FakePanel(reply_with(4, []))
    try:
        with pytest.raises(ValueError, match=message):
            CpaDriver(panel.url, **settings)
        assert panel.requests == []
    finally:
        panel.server.close()
