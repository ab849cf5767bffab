"""Corrupted-reply fuzz: fake instruments on loopback sockets answer each request of the real
driver with a deliberately corrupted reply, and a tally says what the driver made of it.

Each instrument has corruption *classes*. A class the protocol can detect (a wrong function
code, length, echo, address, a checksum that no longer matches) must never yield a value: its
``wrong`` count must be 0. Classes the protocol cannot detect (a Modbus TCP register word, a NC
reply whose 8-bit checksum happens to match, a CAN value carried over TCP) are the protocol's
residue: their figures are reported, never a pass.

Independent of the simulators: the fakes build their replies from the protocol modules'
encoders and speak raw bytes, one request per connection, closing after the reply so a cut-off
frame ends at once instead of after a timeout. Used by ``tests/unit/test_*_reliability.py``
(10^4 replies) and ``benchmarks/fuzz_replies.py`` (10^5). Timeouts are generous (2 s): the fake
hangs up after each reply, so no wait runs to its end unless the machine is very loaded.
"""

from __future__ import annotations

import fcntl
import os
import random
import select
import socket
import struct
import termios
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..devices.coleparmer import protocol as nc
from ..devices.coleparmer.driver import NcDriver
from ..devices.cryomech import protocol as cpa
from ..devices.cryomech.driver import CpaDriver
from ..devices.rotex import protocol as can_protocol
from ..devices.rotex.driver import HpsuDriver, NoReply
from .errors import CommandRefused, CommError


@dataclass
class Tally:
    sent: int = 0
    rejected: int = 0  # the driver raised: no value
    right: int = 0  # the corruption did not touch anything the driver uses
    wrong: int = 0  # a wrong value accepted


@dataclass
class Report:
    instrument: str
    detectable: frozenset[str]
    tallies: dict[str, Tally] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)  # exceptions a driver must not raise

    @property
    def wrong_detectable(self) -> int:
        return sum(t.wrong for name, t in self.tallies.items() if name in self.detectable)

    def lines(self) -> list[str]:
        out = [f"{self.instrument}: {sum(t.sent for t in self.tallies.values())} corrupted replies"]
        for name, t in sorted(self.tallies.items()):
            kind = "detectable" if name in self.detectable else "residue"
            rate = f" ({t.wrong / t.sent:.3%} of the class)" if t.sent and kind == "residue" else ""
            out.append(f"  {name:<28} {kind:<10} sent {t.sent:6}  rejected {t.rejected:6}  "
                       f"right {t.right:6}  wrong values accepted {t.wrong:5}{rate}")
        if self.unexpected:
            out.append(f"  unexpected exceptions: {len(self.unexpected)}, e.g. {self.unexpected[0]}")
        return out


class OneShotServer:
    """Loopback TCP server: per connection, answer requests with ``respond(request)`` (bytes,
    and whether to close afterwards); ``request_length(buffer)`` says when a request is whole."""

    def __init__(self, respond: Callable[[bytes], tuple[bytes, bool]],
                 request_length: Callable[[bytes], int | None], greeting: bytes = b""):
        self._respond, self._length, self._greeting = respond, request_length, greeting
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="fuzz-fake", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.settimeout(5.0)
                try:
                    self._serve(conn)
                except OSError:
                    pass

    def _serve(self, conn: socket.socket) -> None:
        if self._greeting:
            conn.sendall(self._greeting)
        buffer = b""
        while True:
            n = self._length(buffer)
            if n is None or len(buffer) < n:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buffer += chunk
                continue
            request, buffer = buffer[:n], buffer[n:]
            reply, close = self._respond(request)
            conn.sendall(reply)
            if close:
                conn.shutdown(socket.SHUT_RDWR)
                return

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._thread.join(5.0)


def _judge(report: Report, kind: str, call: Callable[[], Any], truth: Any) -> None:
    tally = report.tallies.setdefault(kind, Tally())
    tally.sent += 1
    try:
        value = call()
    except (CommError, CommandRefused, NoReply):
        tally.rejected += 1
        return
    except Exception as exc:  # a driver bug: counted as rejected, listed as unexpected
        tally.rejected += 1
        report.unexpected.append(f"{kind}: {type(exc).__name__}: {exc}")
        return
    if value == truth:
        tally.right += 1
    else:
        tally.wrong += 1


def _flip_bits(frame: bytes, rng: random.Random, first: int, flips: int) -> bytes:
    data = bytearray(frame)
    for _ in range(flips):
        data[rng.randrange(first, len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


# -- Cryomech CPA: Modbus TCP and RTU over TCP ---------------------------------------------------
CPA_DETECTABLE_TCP = ("tcp: function code", "tcp: FC03 block", "tcp: FC06 echo to a state read",
                      "tcp: transaction id", "tcp: unit id", "tcp: protocol id",
                      "tcp: MBAP length", "tcp: byte count", "tcp: truncated", "tcp: extra bytes")
CPA_DETECTABLE_RTU = ("rtu: 1-3 bit flips", "rtu: function code (valid CRC)",
                      "rtu: byte count (valid CRC)", "rtu: truncated")
CPA_RESIDUE = ("tcp: register data",)


def _crc16(data: bytes) -> bytes:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def _cpa_values(rng: random.Random) -> dict[str, object]:
    values: dict[str, object] = {r.name: round(rng.uniform(-40.0, 300.0), 3) for r in cpa.ANALOG}
    values.update(
        OperatingStateCode=rng.randrange(10), CompressorRunning=rng.random() < 0.5,
        WarningCode=rng.choice((0, 1 << rng.randrange(20))), AlarmCode=rng.choice((0, 0b1010)),
        PanelSerialNumber=rng.randrange(65536), Model="CPA1114", SoftwareRevision="2.154",
    )
    return values


def fuzz_cpa(replies: int, seed: int = 1) -> Report:
    rng = random.Random(seed)
    report = Report("CryomechCPA", frozenset(CPA_DETECTABLE_TCP + CPA_DETECTABLE_RTU))
    plan: dict[str, Any] = {}

    def respond(request: bytes) -> tuple[bytes, bool]:
        return plan["reply"](request), True

    def mbap_length(buffer: bytes) -> int | None:
        return 6 + int.from_bytes(buffer[4:6], "big") if len(buffer) >= 6 else None

    tcp = OneShotServer(respond, mbap_length)
    rtu = OneShotServer(respond, lambda buffer: 8)  # FC04/FC06 requests are 8 bytes in RTU
    drivers = {
        "tcp": CpaDriver(f"tcp://127.0.0.1:{tcp.port}", timeout=2.0, retries=0, block_count=53),
        "rtu": CpaDriver(f"rtu+tcp://127.0.0.1:{rtu.port}", timeout=2.0, retries=0,
                         block_count=53, unit_id=16),
    }
    try:
        for driver in drivers.values():
            driver.connect()  # opens (and keeps) the shared link; each reply gets a new socket
        for i in range(replies):
            framing = "tcp" if i % 3 else "rtu"
            kinds = CPA_DETECTABLE_TCP + CPA_RESIDUE if framing == "tcp" else CPA_DETECTABLE_RTU
            kind = kinds[rng.randrange(len(kinds))]
            regs = cpa.encode_block(_cpa_values(rng))
            truth = cpa.decode_block(regs)
            driver = drivers[framing]
            state_read = kind == "tcp: FC06 echo to a state read"
            plan["reply"] = _cpa_corrupter(kind, regs, rng)
            driver._link.drop()
            if state_read:
                _judge(report, kind, driver.read_state, regs[0])
            else:
                _judge(report, kind, driver.refresh, truth)
    finally:
        for driver in drivers.values():
            driver.close()
        tcp.close()
        rtu.close()
    return report


def _cpa_corrupter(kind: str, regs: list[int], rng: random.Random) -> Callable[[bytes], bytes]:
    data = b"".join(word.to_bytes(2, "big") for word in regs)

    def tcp(request: bytes) -> bytes:
        tid, unit = request[0:2], request[6]
        pdu = bytes((0x04, len(data))) + data
        if kind == "tcp: FC06 echo to a state read":
            # an echo of 40001 whose value is not the state (the "state 1")
            pdu = bytes((0x06,)) + (0).to_bytes(2, "big") + (regs[0] + 1).to_bytes(2, "big")
        elif kind == "tcp: function code":
            pdu = bytes((rng.choice([c for c in range(1, 0x80) if c != 4]),)) + pdu[1:]
        elif kind == "tcp: FC03 block":
            pdu = bytes((0x03,)) + pdu[1:]
        elif kind == "tcp: byte count":
            pdu = bytes((0x04, rng.choice([b for b in range(256) if b != len(data)]))) + data
        elif kind == "tcp: register data":
            pdu = _flip_bits(pdu, rng, 2, rng.randint(1, 3))
        frame = tid + b"\0\0" + (len(pdu) + 1).to_bytes(2, "big") + bytes((unit,)) + pdu
        if kind == "tcp: transaction id":
            frame = ((int.from_bytes(tid, "big") + rng.randint(1, 65000)) % 65536).to_bytes(2, "big") + frame[2:]
        elif kind == "tcp: unit id":
            frame = frame[:6] + bytes(((unit + rng.randint(1, 255)) % 256,)) + frame[7:]
        elif kind == "tcp: protocol id":
            frame = frame[:2] + rng.randint(1, 65535).to_bytes(2, "big") + frame[4:]
        elif kind == "tcp: MBAP length":
            length = int.from_bytes(frame[4:6], "big")
            frame = frame[:4] + rng.choice([v for v in range(2, 300) if v != length]).to_bytes(2, "big") + frame[6:]
        elif kind == "tcp: truncated":
            frame = frame[: rng.randrange(len(frame))]
        elif kind == "tcp: extra bytes":
            frame += bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
        return frame

    def rtu(request: bytes) -> bytes:
        unit = request[0]
        body = bytes((unit, 0x04, len(data))) + data
        if kind == "rtu: function code (valid CRC)":
            body = bytes((unit, rng.choice([c for c in (1, 2, 3, 6, 0x10, 0x17, 0x84)]))) + body[2:]
        elif kind == "rtu: byte count (valid CRC)":
            body = bytes((unit, 0x04, rng.choice([b for b in range(256) if b != len(data)]))) + data
        frame = body + _crc16(body)
        if kind == "rtu: 1-3 bit flips":
            frame = _flip_bits(frame, rng, 0, rng.randint(1, 3))
        elif kind == "rtu: truncated":
            frame = frame[: rng.randrange(len(frame))]
        return frame

    return tcp if kind.startswith("tcp") else rtu


# -- Cole-Parmer chiller: NC over a TCP terminal server ------------------------------------------
NC_DETECTABLE = ("1 bit flip", "data length (valid checksum)", "command echo (valid checksum)",
                 "address (valid checksum)", "lead byte", "truncated", "noise before the reply")
NC_RESIDUE = ("2-3 data/checksum bytes (8-bit checksum)",)


def fuzz_chiller(replies: int, seed: int = 2, family: str = "Polystat") -> Report:
    """Over a fresh pseudo-terminal per reply, opened like /dev/ttyUSB0: the fake's master side
    answers the Read Acknowledge of ``connect()``, then the corrupted reply, then hangs up, so a
    cut-off frame ends at once (a socket:// port would sleep 0.3 s in every close)."""
    rng = random.Random(seed)
    report = Report(f"ColeParmerChiller ({family})", frozenset(NC_DETECTABLE))
    fam = nc.family(family)
    for _ in range(replies):
        kinds = NC_DETECTABLE + NC_RESIDUE
        kind = kinds[rng.randrange(len(kinds))]
        if rng.random() < 0.25:
            status = bytes(rng.randrange(256) for _ in range(fam.status_length))
            truth: Any = nc.decode_status(family, status)[0]
            corrupted = _nc_corrupter(kind, nc.READ_STATUS, status, rng)
            read: Callable[[NcDriver], Any] = lambda d: d.read_status()["StatusFlags"]
        else:
            name = rng.choice(("Setpoint", "InternalTemperature", "HighTemperatureWarning"))
            reading = nc.encode_reading(rng.randint(-32768, 32767), rng.randrange(3), 1)
            truth = nc.decode_reading(reading)
            corrupted = _nc_corrupter(kind, fam.parameters[name].read, reading, rng)
            read = lambda d, name=name: d.read(name)
        replies_in_turn = iter((_nc_corrupter("none", nc.ACKNOWLEDGE, b"\x00\x01", rng), corrupted))
        with _PtyFake(lambda request: next(replies_in_turn)(request)) as path:
            driver = NcDriver(path, family=family, timeout=2.0, retries=0)
            try:
                driver.connect()
                _judge(report, kind, lambda: read(driver), truth)
            finally:
                driver.close()
    return report


class _PtyFake:
    """A pseudo-terminal whose master side answers NC requests with ``respond`` and hangs up
    after the second reply."""

    def __init__(self, respond: Callable[[bytes], bytes]):
        self._respond = respond
        self._master, self._slave = os.openpty()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fuzz-pty", daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        return os.ttyname(self._slave)

    def __exit__(self, *exc_info) -> None:
        self._done.set()  # the driver has finished: no need to wait for it to read
        self._thread.join(5.0)
        os.close(self._slave)

    def _serve(self) -> None:
        try:
            buffer = b""
            for _ in range(2):
                while len(buffer) < 5 or len(buffer) < nc.frame_length(buffer):
                    ready, _, _ = select.select([self._master], [], [], 5.0)
                    if not ready:
                        return
                    buffer += os.read(self._master, 256)
                n = nc.frame_length(buffer)
                request, buffer = buffer[:n], buffer[n:]
                os.write(self._master, self._respond(request))
            # Hang up only once the driver has read everything: a pty's hang-up discards
            # unread input, which would turn any reply into a lost one. The reply reaches the
            # slave's queue asynchronously (microseconds), so first see it arrive or give it
            # 2 ms; a reply lost all the same only counts as rejected, never as a value.
            arrived = time.monotonic() + 0.002
            while not _unread(self._slave) and time.monotonic() < arrived:
                time.sleep(0.0001)
            consumed = time.monotonic() + 5.0
            while _unread(self._slave) and time.monotonic() < consumed and not self._done.is_set():
                time.sleep(0.0001)
        except OSError:
            pass
        finally:
            os.close(self._master)  # the driver's next read fails at once


def _unread(fd: int) -> int:
    return struct.unpack("i", fcntl.ioctl(fd, termios.TIOCINQ, b"\0\0\0\0"))[0]


def _nc_corrupter(kind: str, command: int, data: bytes, rng: random.Random) -> Callable[[bytes], bytes]:
    def reply(request: bytes) -> bytes:
        lead, address = request[0], request[2]
        frame = nc.Frame(lead, address, command, data).encode()
        if kind == "data length (valid checksum)":
            n = rng.choice([v for v in range(0, 9) if v != len(data)])
            extra = bytes(rng.randrange(256) for _ in range(max(0, n - len(data))))
            frame = nc.Frame(lead, address, command, (data + extra)[:n]).encode()
        elif kind == "command echo (valid checksum)":
            other = rng.choice([c for c in range(256) if c not in (command, nc.ERROR_REPLY)])
            frame = nc.Frame(lead, address, other, data).encode()
        elif kind == "address (valid checksum)":
            frame = nc.Frame(lead, rng.choice([a for a in range(1, 101) if a != address]),
                             command, data).encode()
        elif kind == "lead byte":
            frame = bytes((rng.choice([b for b in range(256) if b != lead]),)) + frame[1:]
        elif kind == "1 bit flip":
            frame = _flip_bits(frame, rng, 1, 1)
        elif kind == "truncated":
            frame = frame[: rng.randrange(len(frame))]
        elif kind == "noise before the reply":
            frame = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4))) + frame
        elif kind == "2-3 data/checksum bytes (8-bit checksum)":
            # The header intact, so only the checksum stands between this and a value.
            corrupted = bytearray(frame)
            for position in rng.sample(range(nc.HEADER_LENGTH, len(frame)), rng.randint(2, 3)):
                corrupted[position] = rng.randrange(256)
            frame = bytes(corrupted)
        return frame

    return reply


# -- Rotex heat pump: CAN telegrams through socketcand ------------------------------------------
CAN_DETECTABLE = ("sender id", "message type", "target", "index", "frame length",
                  "malformed message")
CAN_RESIDUE = ("value bytes (no checksum over TCP)",)
_OWN_ID = 0x680


def fuzz_heat_pump(replies: int, seed: int = 3) -> Report:
    rng = random.Random(seed)
    report = Report("RotexHPSU (socketcand)", frozenset(CAN_DETECTABLE))
    plan: dict[str, Any] = {}

    def respond(request: bytes) -> tuple[bytes, bool]:
        text = request.decode("ascii")
        if text.startswith("< open") or text.startswith("< rawmode"):
            return b"< ok >", False
        return plan["reply"](text), True

    def message_length(buffer: bytes) -> int | None:
        end = buffer.find(b">")
        return end + 1 if end >= 0 else None

    server = OneShotServer(respond, message_length, greeting=b"< hi >")
    names = [n for n, c in HpsuDriver("virtual://fuzz").table.items() if c.type == "float"][:20]
    drivers = {name: HpsuDriver(f"socketcand://127.0.0.1:{server.port}/can0", commands=[name],
                                timeout=2.0, retries=0) for name in names}
    try:
        for name, driver in drivers.items():
            cmd = driver.table[name]
            plan["reply"] = _can_corrupter("none", cmd, 0, rng)
            driver.connect()
            driver._link.drop()  # the drivers share one link; the fake hung up after the probe
        for _ in range(replies):
            kinds = CAN_DETECTABLE + CAN_RESIDUE
            kind = kinds[rng.randrange(len(kinds))]
            name = rng.choice(names)
            driver = drivers[name]
            cmd = driver.table[name]
            word = rng.randrange(0x8000) if cmd.signed else rng.randrange(0x7FFF)
            truth = can_protocol.decode_word(cmd, word)
            plan["reply"] = _can_corrupter(kind, cmd, word, rng)
            driver._link.drop()
            _judge(report, kind, lambda d=driver, n=name: d.read(n), truth)
    finally:
        for driver in drivers.values():
            driver.close()
        server.close()
    return report


def _can_corrupter(kind: str, cmd: Any, word: int, rng: random.Random) -> Callable[[str], bytes]:
    def reply(_request: str) -> bytes:
        sender = cmd.node
        data = bytearray(can_protocol.encode_telegram(_OWN_ID, can_protocol.MSG_RESPONSE,
                                                      cmd.index, word, fa=cmd.form == "fa"))
        if kind == "sender id":
            sender = rng.choice([i for i in range(0x800) if i != cmd.node])
        elif kind == "message type":
            data[0] = data[0] & 0xF0 | rng.choice([t for t in range(16) if t != 2])
        elif kind == "target":
            target = rng.choice([t for t in range(0x800) if t != _OWN_ID])
            data[0:2] = can_protocol.address_bytes(target, can_protocol.MSG_RESPONSE)
        elif kind == "index":
            position = (3, 4) if cmd.form == "fa" else (2,)
            at = rng.choice(position)
            data[at] = rng.choice([b for b in range(256) if b != data[at] and b != 0xFA])
        elif kind == "frame length":
            data = data[: rng.randrange(7)] if rng.random() < 0.5 else data + b"\0"
        elif kind == "value bytes (no checksum over TCP)":
            position = 5 if data[2] == 0xFA else 3
            data[position + rng.randrange(2)] ^= 1 << rng.randrange(8)
        text = f"< frame {sender:03X} 1.0 {bytes(data).hex().upper()} >"
        if kind == "malformed message":
            text = rng.choice([f"< frame 1G0 1.0 {bytes(data).hex()} >", "<< frame >",
                               f"< frame {sender:03X} x {bytes(data).hex()} >", "junk"])
        return text.encode("ascii")

    return reply


FUZZERS: dict[str, Callable[[int], Report]] = {
    "cpa": fuzz_cpa, "chiller": fuzz_chiller, "heatpump": fuzz_heat_pump,
}
