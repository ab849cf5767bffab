"""A Cole-Parmer / NESLAB chiller that speaks NC on a TCP socket and on a pseudo-terminal.

It behaves like the unit the manuals describe: it ignores bytes until its lead byte and
address, waits for the whole frame (an incomplete one is forgotten after 1 s of quiet), answers
0F errors with the family's numbering, limits sets to its range and echoes what it stored, and
reports status in the family's layout. A first-order bath follows the set point. Tests can make
it silent (serial mode off), corrupt or refuse replies, add line noise, raise faults and
warnings, and pace bytes at a baud rate.

    plantds simulate chiller --port 5021 --family Polystat --precision 0.1 [--baud 9600] [--pty]

Section numbers (§) refer to ``docs/neslab-nc.md``.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import random
import select
import socket
import threading
import time
import tty
from typing import Callable

from ...server.serial_line import LineClock
from ...server.sim_faults import Fault, add_fault_arguments
from ...server.simulator import Simulator
from ...server.tcp_server import TcpServer
from . import protocol

# The unit forgets a partial request after this much quiet (TFLEX D-9: "times out silently").
_PARTIAL_FRAME_TIMEOUT_S = 1.0
_POLL_S = 0.1
_ACK_VERSION = bytes((0x00, 0x01))
_PRECISIONS = {1.0: 0, 0.1: 1, 0.01: 2}  # temperature precision → decimal places
# PID terms: (decimals, low, high, initial). They keep their own resolution whatever the
# temperature precision; the ranges are the manuals' (§5).
_PID = {
    "HeatProportionalBand": (1, 0.1, 99.9, 0.6), "HeatIntegral": (2, 0.0, 9.99, 0.6),
    "HeatDerivative": (1, 0.0, 5.0, 0.0), "CoolProportionalBand": (1, 0.1, 99.9, 0.6),
    "CoolIntegral": (2, 0.0, 9.99, 0.6), "CoolDerivative": (1, 0.0, 5.0, 0.0),
}
# Set On/Off array settings that start enabled (the others start disabled).
_SETTINGS_ON = {"faults enabled", "serial comm"}
_NO_UNIT = 0
# The bit each family sets while any fault is active (ThermoFlex has none).
_FAULT_SUMMARY = {"RTE": "unit faulted", "EX": "unit faulted", "Polystat": "chiller faulted",
                  "Merlin": "chiller faulted"}


class ChillerSimulator(Simulator):
    """One NC unit. ``on_off_length``: the only Set On/Off array length its firmware takes (a
    Merlin 02950.1J–K takes 5); by default every length the family's firmware versions take.
    ``pty``: also serve on a pseudo-terminal from start (its path in ``pty_path``)."""

    # The chiller's own faults (beside offline/online, drop, delay, corrupt), by name.
    FAULTS = {
        "error": Fault("CODE [COUNT]", "answer the next request(s) with NC error CODE (1-5)",
                       lambda sim, code, n="1": sim.error_next(int(code), int(n))),
        "noise": Fault("PROBABILITY", "stray bytes before a reply with this probability (0-1)",
                       lambda sim, p: sim.set_noise(float(p))),
        "fault": Fault("NAME", "raise a fault status bit of the family's table (Polystat: 'chiller faulted'): the unit stops", lambda sim, n: sim.set_fault(n)),
        "warning": Fault("NAME", "raise a warning status bit of the family's table (ThermoFlex: 'low fixed flow warning')", lambda sim, n: sim.set_warning(n)),
        "serial": Fault("on|off", "the front panel's serial mode (off: the unit ignores the line)",
                        lambda sim, v: sim.set_serial_mode({"on": True, "off": False}[v])),
        "precision": Fault("0.01|0.1|1", "change the temperature precision, as the front panel does",
                           lambda sim, p: sim.set_precision(float(p))),
        "clear": Fault("", "clear fault and warning bits", lambda sim: sim.clear()),
    }

    def __init__(
        self,
        family: str = "Polystat",
        host: str = "127.0.0.1",
        port: int = 0,
        address: int = 1,
        bus: str = "RS232",
        precision: float = 0.1,
        baudrate: int | None = None,
        setpoint: float = 20.0,
        temperature_range: tuple[float, float] = (-25.0, 150.0),
        ambient: float = 22.0,
        time_constant_s: float = 60.0,
        on_off_length: int | None = None,
        seed: int | None = None,
        temperature_unit: str = "degC",
        pty: bool = False,
    ):
        self.family = protocol.family(family)
        self.address = protocol.check_address(address, bus)
        self.lead = protocol.lead_byte(bus)
        self._on_off_lengths = (on_off_length,) if on_off_length else self.family.on_off_lengths
        self._temp_decimals = _decimals_for(precision)
        # The unit its qualifiers name: degC, degF (a ThermoFlex set to °F) or "" (RTE/EX/Merlin
        # qualifiers 10/20). Values are the same numbers whatever it says.
        self._temp_unit = protocol.UNITS.index(temperature_unit)
        self.baudrate = baudrate
        self.temperature_range = temperature_range
        self.ambient = ambient
        self.time_constant_s = time_constant_s
        self._host, self._requested_port = host, port
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        parameters = self.family.parameters.items()
        self._reads = {p.read: name for name, p in parameters}
        self._sets = {p.set: name for name, p in parameters if p.set is not None}

        low, high = temperature_range
        initial = {
            "Setpoint": self._clamp("Setpoint", setpoint),
            "LowTemperatureWarning": low + 5.0, "HighTemperatureWarning": high - 5.0,
            "LowTemperatureFault": low, "HighTemperatureFault": high,
            **{name: pid[3] for name, pid in _PID.items()},
        }
        self._values = {k: v for k, v in initial.items() if k in self.family.parameters}
        self._internal = self._external = self._values["Setpoint"]
        self._last_advance = time.monotonic()
        self._running = True
        self._settings = {name: name in _SETTINGS_ON for name in self.family.on_off[1:]}
        if "0.01 degC" in self._settings:
            self._settings["0.01 degC"] = self._temp_decimals == 2
        self._faults: set[str] = set()
        self._warnings: set[str] = set()
        self._serial_mode = True
        self._corrupt = 0
        self._errors: collections.deque[tuple[int, int | None]] = collections.deque()
        self._noise = 0.0
        self._online = True
        self._delay_s = 0.0
        # Requests this unit answered (none while silent), for tests to check the wire bytes.
        self.requests: collections.deque[bytes] = collections.deque(maxlen=1000)

        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []  # the pseudo-terminals' serving threads
        self._server: TcpServer | None = None
        self._pty_fds: list[int] = []
        self._pty = pty
        self.pty_path: str | None = None

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> "ChillerSimulator":
        self._stop.clear()
        self._server = TcpServer(self._host, self._requested_port, self._serve_connection, "chiller-sim")
        if self._pty:
            self.pty_path = self.open_pty()
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return self._server.port

    @property
    def urls(self) -> list[str]:
        return [f"socket://{self._host}:{self.port}"]

    def banner(self) -> str:
        where = self.url + (f" and {self.pty_path}" if self.pty_path else "")
        return f"{self.family.name} chiller simulator, address {self.address}, on {where}"

    def open_pty(self) -> str:
        """Also serve on a pseudo-terminal; returns the path a client opens (like /dev/ttyUSB0)."""
        master, slave = os.openpty()
        tty.setraw(slave)  # binary frames: no echo, no CR/LF translation
        # Keeping the slave open means a client closing it does not make the master read fail.
        self._pty_fds += [master, slave]

        def read() -> bytes | None:
            ready, _, _ = select.select([master], [], [], _POLL_S)
            return os.read(master, 256) if ready else b""

        def write(data: bytes) -> None:
            os.write(master, data)

        self._spawn(lambda: self._serve(read, write), "pty")
        return os.ttyname(slave)

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()  # cuts the clients: their serving threads end
            self._server = None
        for thread in self._threads:
            thread.join(5.0)
        for fd in self._pty_fds:
            os.close(fd)
        self._threads.clear()
        self._pty_fds.clear()

    # -- fault injection and inspection ------------------------------------------------------
    def drop_connections(self) -> None:
        """Cut every TCP client (a terminal server restarting); the clients reconnect."""
        if self._server is not None:
            self._server.drop_connections()

    @property
    def connections(self) -> int:
        """TCP clients connected now."""
        return self._server.connections if self._server is not None else 0

    def set_online(self, online: bool) -> None:
        """Offline: the unit is powered down, silent on the line (the terminal server stays up)."""
        with self._lock:
            self._online = online

    def set_delay(self, seconds: float) -> None:
        """Answer every request ``seconds`` late (a slow unit; beyond a client's timeout it looks
        like silence)."""
        if seconds < 0:
            raise ValueError(f"delay {seconds} s must be >= 0")
        with self._lock:
            self._delay_s = seconds

    def set_serial_mode(self, enabled: bool) -> None:
        """Serial mode off (front panel): the unit ignores everything on the line."""
        with self._lock:
            self._serial_mode = enabled
            if "serial comm" in self._settings:
                self._settings["serial comm"] = enabled

    def corrupt_next(self, count: int = 1) -> None:
        """The next ``count`` replies go out with a wrong checksum."""
        with self._lock:
            self._corrupt += count

    def error_next(self, code: int, count: int = 1, command: int | None = None) -> None:
        """The next ``count`` requests (with that command byte, if given) are answered with
        error 0F number ``code``."""
        with self._lock:
            self._errors.extend([(code, command)] * count)

    def set_noise(self, probability: float) -> None:
        """Each reply is preceded by 1–4 stray bytes with this probability."""
        with self._lock:
            self._noise = probability

    def set_fault(self, name: str) -> None:
        """Raise a fault status bit (a name from the family's table); the unit stops."""
        self._add_bit(name, (protocol.FAULT, protocol.FAULT_OR_WARNING), self._faults)
        with self._lock:
            self._running = False

    def set_warning(self, name: str) -> None:
        """Raise a warning status bit; the unit keeps running."""
        self._add_bit(name, (protocol.WARNING, protocol.FAULT_OR_WARNING), self._warnings)

    def clear(self) -> None:
        """Clear faults and warnings (a stopped unit stays stopped until started)."""
        with self._lock:
            self._faults.clear()
            self._warnings.clear()

    def set_precision(self, precision: float) -> None:
        """Change the temperature precision as the front panel (or On/Off d6) would."""
        with self._lock:
            self._temp_decimals = _decimals_for(precision)

    @property
    def running(self) -> bool:
        with self._lock:
            return self._running

    def value(self, name: str) -> float:
        """The value the unit holds for a parameter (temperatures from the bath model)."""
        with self._lock:
            return self._current(name)

    def _add_bit(self, name: str, kinds: tuple[str, ...], target: set[str]) -> None:
        bit = self.family.bit(name)
        if bit.kind not in kinds:
            raise ValueError(f"{self.family.name} status bit {name!r} is a {bit.kind}, not {kinds[0]}")
        with self._lock:
            target.add(name)

    # -- transports --------------------------------------------------------------------------
    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"chiller-sim-{name}", daemon=True)
        # Finished threads are forgotten, so a long-running simulator's list stays flat (TCP
        # clients are the TcpServer's own threads).
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _serve_connection(self, conn: socket.socket) -> None:
        """Serve one TCP client (a thread of the TcpServer, which closes and forgets it)."""
        conn.settimeout(_POLL_S)

        def read() -> bytes | None:
            try:
                return conn.recv(256) or None  # b"" from recv = peer closed
            except socket.timeout:
                return b""
            except OSError:
                return None

        self._serve(read, conn.sendall)

    def _serve(self, read: Callable[[], bytes | None], write: Callable[[bytes], None]) -> None:
        """One line: collect request frames, answer each (``read`` gives b"" on a quiet poll,
        None when the peer is gone)."""
        splitter = protocol.FrameSplitter(self.lead, self.address)
        last_byte = time.monotonic()
        # Both directions at the line's speed: a request is answered once its bytes could have
        # arrived, and the reply takes its own character times.
        rx = tx = None
        if self.baudrate:
            rx, tx = LineClock(self.baudrate), LineClock(self.baudrate)
        while not self._stop.is_set():
            try:
                chunk = read()
            except OSError:
                return
            if chunk is None:
                return
            now = time.monotonic()
            if not chunk:
                if splitter.buffer and now - last_byte > _PARTIAL_FRAME_TIMEOUT_S:
                    splitter.clear()
                continue
            last_byte = now
            arrived = rx.send(len(chunk), now)[-1] if rx else now
            for request in splitter.feed(chunk):
                _sleep_until(arrived + self._delay_s)
                reply = self.respond(request)
                if reply:
                    try:
                        self._send(write, reply, tx)
                    except OSError:
                        return

    def _send(self, write: Callable[[bytes], None], data: bytes, tx: LineClock | None) -> None:
        if tx is None:
            write(data)
            return
        for i, received_at in enumerate(tx.send(len(data), time.monotonic())):
            _sleep_until(received_at)
            write(data[i : i + 1])

    # -- the unit ----------------------------------------------------------------------------
    def respond(self, request: bytes) -> bytes | None:
        """The bytes the unit sends back for one request frame addressed to it (None: silent)."""
        with self._lock:
            if not (self._online and self._serial_mode):
                return None
            self.requests.append(request)
            if request[-1] != protocol.checksum(request[1:-1]):
                command, data = self._error(protocol.BAD_CHECKSUM, request[3])
            else:
                command, data = self._handle(protocol.decode_frame(request))
            if self._errors and self._errors[0][1] in (None, request[3]):
                command, data = protocol.ERROR_REPLY, bytes((self._errors.popleft()[0], request[3]))
            reply = protocol.Frame(self.lead, self.address, command, data).encode()
            if self._corrupt:
                self._corrupt -= 1
                reply = reply[:-1] + bytes((reply[-1] ^ 0xFF,))
            if self._noise and self._rng.random() < self._noise:
                reply = self._rng.randbytes(self._rng.randint(1, 4)) + reply
            # An RTE told "serial comm off" (On/Off d8) answers, then goes back to local control.
            self._serial_mode = self._settings.get("serial comm", True)
            return reply

    def _handle(self, frame: protocol.Frame) -> tuple[int, bytes]:
        command, data = frame.command, frame.data
        reads, sets = self._reads, self._sets
        if command == protocol.ACKNOWLEDGE and not data:
            return command, _ACK_VERSION
        if command == protocol.READ_STATUS and not data:
            return command, protocol.encode_status(self.family.name, self._active_bits())
        if command in reads and not data:
            return command, self._reading(reads[command])
        if command in sets and len(data) == 2:
            self._store(sets[command], int.from_bytes(data, "big", signed=True))
            return command, self._reading(sets[command])
        if (command == protocol.SET_ON_OFF and len(data) in self._on_off_lengths
                and all(v <= protocol.NO_CHANGE for v in data)):
            return command, self._on_off(data)
        known = command in reads or command in sets or command in (
            protocol.ACKNOWLEDGE, protocol.READ_STATUS, protocol.SET_ON_OFF)
        return self._error(protocol.BAD_DATA if known else protocol.BAD_COMMAND, command)

    def _error(self, kind: str, command: int) -> tuple[int, bytes]:
        return protocol.ERROR_REPLY, bytes((protocol.error_code(self.family.name, kind), command))

    def _decimals(self, name: str) -> int:
        return _PID[name][0] if name in _PID else self._temp_decimals

    def _clamp(self, name: str, value: float) -> float:
        low, high = _PID[name][1:3] if name in _PID else self.temperature_range
        return min(max(value, low), high)

    def _reading(self, name: str) -> bytes:
        decimals = self._decimals(name)
        value = self._current(name)
        unit = _NO_UNIT if name in _PID else self._temp_unit
        return protocol.encode_reading(protocol.to_raw(value, decimals), decimals, unit)

    def _store(self, name: str, raw: int) -> None:
        # The unit reads the digits at its own precision and limits them to its range.
        self._advance()
        self._values[name] = self._clamp(name, raw / 10 ** self._decimals(name))

    def _current(self, name: str) -> float:
        self._advance()
        if name == "InternalTemperature":
            return self._internal
        if name == "ExternalTemperature":
            return self._external
        return self._values[name]

    def _advance(self) -> None:
        """First-order bath: towards the set point while running, towards ambient when off;
        the external probe lags the bath."""
        now = time.monotonic()
        dt, self._last_advance = now - self._last_advance, now
        target = self._values["Setpoint"] if self._running else self.ambient
        self._internal = target + (self._internal - target) * math.exp(-dt / self.time_constant_s)
        lag = math.exp(-2.0 * dt / self.time_constant_s)
        self._external = self._internal + (self._external - self._internal) * lag

    def _active_bits(self) -> set[str]:
        self._advance()
        names = self._faults | self._warnings
        booleans = self.family.booleans
        if self._running:
            names.add(booleans["UnitOn"])
            setpoint = self._values["Setpoint"]
            for attr, on in (("PumpOn", True), ("HeaterOn", self._internal < setpoint - 0.05),
                             ("CompressorOn", self._internal > setpoint + 0.05)):
                if attr in booleans and on:
                    names.add(booleans[attr])
        if self._faults and self.family.name in _FAULT_SUMMARY:
            names.add(_FAULT_SUMMARY[self.family.name])
        return names

    def _on_off(self, data: bytes) -> bytes:
        """Apply a Set On/Off array (2 = leave alone) and report the resulting settings."""
        names = self.family.on_off[: len(data)]
        for name, wanted in zip(names, data):
            if wanted == protocol.NO_CHANGE:
                continue
            if name == "unit on":
                self._advance()
                self._running = bool(wanted) and not self._faults  # a faulted unit won't start
                continue
            self._settings[name] = bool(wanted)
            if name == "0.01 degC" and self._temp_decimals:
                self._temp_decimals = 2 if wanted else 1
        state = [self._running if name == "unit on" else self._settings[name] for name in names]
        return bytes(int(on) for on in state)


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _decimals_for(precision: float) -> int:
    for step, decimals in _PRECISIONS.items():
        if math.isclose(precision, step):
            return decimals
    raise ValueError(f"precision {precision} unknown: expected 1, 0.1 or 0.01")


# -- command line ----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5021, help="TCP port (0: any free port)")
    parser.add_argument("--family", choices=list(protocol.FAMILIES), default="Polystat")
    parser.add_argument("--precision", type=float, choices=sorted(_PRECISIONS), default=0.1,
                        help="temperature resolution in °C")
    parser.add_argument("--address", type=int, default=1, help="unit address (RS-485: 1–100)")
    parser.add_argument("--bus", choices=list(protocol.LEADS), default="RS232")
    parser.add_argument("--baud", type=int, default=None,
                        help="pace requests and replies at this baud rate")
    parser.add_argument("--setpoint", type=float, default=20.0, help="initial set point in °C")
    parser.add_argument("--pty", action="store_true", help="also serve on a pseudo-terminal")
    add_fault_arguments(parser, ChillerSimulator.faults())


def run(args: argparse.Namespace) -> int:
    return ChillerSimulator(
        family=args.family, host=args.host, port=args.port, address=args.address, bus=args.bus,
        precision=args.precision, baudrate=args.baud, setpoint=args.setpoint, pty=args.pty,
    ).serve(args)
