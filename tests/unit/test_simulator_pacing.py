"""Honest simulators: serial lines carry requests and replies at the baud rate, the CAN bus
carries frames for their frame time. Byte counts, frame times and ordering are checked; how fast
the machine runs is not (timestamps are compared with lower bounds that sleeping only raises)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from pymodbus.framer.rtu import FramerRTU

from plantds.devices.coleparmer import protocol as nc
from plantds.devices.coleparmer.simulator import ChillerSimulator
from plantds.devices.cryomech.simulator import CpaSimulator
from plantds.devices.rotex.driver import HpsuDriver
from plantds.devices.rotex.simulator import HpsuSimulator, SimBus, can_crc15, can_frame_bits
from plantds.devices.rotex.table import load_commands
from plantds.server.serial_line import LineClock


def test_line_clock_queues_bytes_behind_those_still_on_the_line():
    line = LineClock(9600)
    char = line.char_s
    assert char == pytest.approx(10 / 9600)
    assert line.send(3, now=1.0) == pytest.approx([1.0 + char, 1.0 + 2 * char, 1.0 + 3 * char])
    # handed over while those are on the line: they follow, they do not overlap
    assert line.send(2, now=1.0) == pytest.approx([1.0 + 4 * char, 1.0 + 5 * char])
    assert line.send(1, now=5.0) == pytest.approx([5.0 + char])  # an idle line starts at once
    assert line.send(0, now=6.0) == []
    assert line.bytes_carried == 6
    with pytest.raises(ValueError, match="baud rate 0"):
        LineClock(0)


def test_line_clock_keeps_the_silence_between_frames():
    line = LineClock(9600, gap_chars=3.5)
    char = line.char_s
    request = line.send(8, now=0.0)
    assert request[-1] == pytest.approx(8 * char)  # an idle line: no wait
    reply = line.send(2, now=request[-1])  # answered at once: after the 3.5-character silence
    assert reply == pytest.approx([11.5 * char + char, 11.5 * char + 2 * char])
    assert line.send(1, now=1.0) == pytest.approx([1.0 + char])  # long quiet: no wait


def test_chiller_answers_once_the_request_could_have_crossed_the_line():
    sim = ChillerSimulator("Polystat", baudrate=1200)  # not started: one line driven by hand
    request = nc.read_request(sim.family.parameters["Setpoint"].read)
    char = 10 / 1200
    handed = []  # when the request was handed over
    written: list[tuple[float, bytes]] = []

    def read() -> bytes | None:
        if not handed:
            handed.append(time.monotonic())
            return request
        if len(written) < 9:  # a value reply: header 5, qualifier + value 3, checksum 1
            time.sleep(0.001)
            return b""
        return None  # the peer is gone: the line ends

    sim._serve(read, lambda data: written.append((time.monotonic(), data)))
    assert [len(data) for _, data in written] == [1] * 9  # byte by byte, as a line carries them
    reply = b"".join(data for _, data in written)
    assert nc.decode_frame(reply).command == request[3]
    arrived = handed[0] + len(request) * char
    for k, (at, _) in enumerate(written, start=1):
        assert at >= arrived + k * char - 1e-6  # never before request + k reply characters


def test_chiller_answers_back_to_back_requests_in_order_with_pacing():
    family = nc.family("Polystat")
    commands = [family.parameters[name].read for name in ("Setpoint", "InternalTemperature")]
    with ChillerSimulator("Polystat", baudrate=19200) as sim:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=5.0) as conn:
            conn.sendall(b"".join(nc.read_request(c) for c in commands))
            replies = _receive(conn, 18)
    assert [r[3] for r in (replies[:9], replies[9:])] == commands
    assert [r[3] for r in sim.requests] == commands


def test_cpa_rtu_relay_paces_request_and_reply():
    request = bytes.fromhex("10 04 0001 0035")  # unit 16, FC04, PDU 1, 53 registers
    request += FramerRTU.compute_CRC(request).to_bytes(2, "big")
    reply_length = 5 + 2 * 53
    with CpaSimulator(framer="rtu", baudrate=9600) as sim:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=5.0) as conn:
            sent = time.monotonic()
            conn.sendall(request)
            reply = _receive(conn, reply_length)
            done = time.monotonic()
        assert sim.received_bytes() == request
    assert len(reply) == reply_length and reply[:3] == bytes((0x10, 0x04, 106))
    assert FramerRTU.compute_CRC(reply[:-2]).to_bytes(2, "big") == reply[-2:]
    # both directions, and the 3.5-character silence that ends the request
    assert done - sent >= (len(request) + 3.5 + reply_length) * 10 / 9600 - 1e-3


def test_can_frame_bits():
    check = [b >> i & 1 for b in b"123456789" for i in reversed(range(8))]
    assert can_crc15(check) == 0x059E  # CRC-15/CAN catalogue check value
    # 34 zero bits (SOF, id 0, control, DLC 0, CRC 0): a stuff bit after every five
    assert can_frame_bits(0, b"") == 47 + 6
    for cmd in load_commands().values():  # the heat pump's telegrams: 7 data bytes
        data = bytes.fromhex(cmd.request.replace(" ", "")).ljust(7, b"\x00")
        assert 103 <= can_frame_bits(0x680, data) <= 125


def test_bus_carries_one_frame_at_a_time_in_order():
    bus = SimBus(bitrate=20_000)
    heard: list[tuple[int, bytes]] = []
    bus.attach(lambda arbitration_id, data: heard.append((arbitration_id, data)))
    frames = {sender: [bytes([sender & 0xFF, n, 0, 0, 0, 0, 0]) for n in range(5)]
              for sender in (0x680, 0x190)}

    def send_all(sender: int) -> None:
        for data in frames[sender]:
            bus.send(None, sender, data)

    threads = [threading.Thread(target=send_all, args=(s,)) for s in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10.0)
    for sender, sent in frames.items():
        assert [data for a, data in heard if a == sender] == sent  # each once, in order
    bits = sum(can_frame_bits(a, d) for a, data in frames.items() for d in data)
    assert bus.busy_s == pytest.approx(bits / 20_000)


def test_heat_pump_read_pays_the_frame_time_of_request_and_reply():
    with HpsuSimulator(channel="virtual://pacing-test", bitrate=20_000, drift=False) as sim:
        frames: list[tuple[int, bytes]] = []
        sim.bus.attach(lambda arbitration_id, data: frames.append((arbitration_id, data)))
        driver = HpsuDriver("virtual://pacing-test", commands=["t_dhw"], timeout=2.0, retries=0)
        driver.connect()
        try:
            assert driver.read("t_dhw") == pytest.approx(sim.value("t_dhw"))
        finally:
            driver.close()
        assert {a for a, _ in frames} == {0x680, 0x180}  # our requests, the node's replies
        bits = sum(can_frame_bits(a, d) for a, d in frames)
        assert sim.bus.busy_s == pytest.approx(bits / 20_000)


def _receive(conn: socket.socket, length: int) -> bytes:
    data = b""
    while len(data) < length:
        chunk = conn.recv(length - len(data))
        if not chunk:
            break
        data += chunk
    return data
