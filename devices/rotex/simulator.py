"""Rotex HPSU simulator: the heat pump's CAN nodes, the RoCon display and other bus clients.

One simulated bus (:class:`SimBus`) carries every frame between stations:

* the HPSU nodes (0x180, 0x300, 0x400, 0x500, 0x600) answer every read of an index in the
  command table after ``latency_s`` with a type-2 reply addressed to the requester, from a small
  model (temperatures drifting around their setpoints, counters, an error code); writes (type 0,
  and type 2 as pyHPSU sends them) change the stored word of a writable index;
* background traffic at ``background_rate_hz``: the RoCon display (0x10A) polling the nodes and
  another client (0x190) reading with ``00 00`` value bytes — the frames a sloppy matcher
  mistakes for replies. With ``mimic_clients`` every index a client asks for is asked for again at
  once by the other client, the display, and the node itself (to a peer module), so ``00 00``
  requests — one of them from the very node the client waits for — always land between the
  request and its reply, and a reply to the display follows it;
* gateways that let a client onto the bus: a python-can ``virtual`` channel (in-process), a
  socketcand server (the text protocol python-can's ``socketcand`` interface speaks) and an
  ELM327 emulator (the AT command set, prompt and reply lines of the real adapter) on TCP.

Faults: :meth:`HpsuSimulator.set_online` (the heat pump stops answering), :meth:`drop_connections`
(TCP clients cut off), :meth:`set_error`, ``latency_s``, :meth:`mute` (an index never answered),
:meth:`refuse_writes`, :meth:`set_raw` (a "no value" word), and ``elm_pp=False`` (a clone
without programmable parameters).
"""

from __future__ import annotations

import argparse
import collections
import heapq
import itertools
import logging
import math
import queue
import random
import re
import socket
import threading
import time
from typing import Callable

import can

from ...server.sim_faults import Fault, add_fault_arguments
from ...server.simulator import Simulator
from ...server.tcp_server import TcpServer
from . import elm327, protocol
from .table import Command, load_commands

log = logging.getLogger(__name__)

DISPLAY_ID = 0x10A
OTHER_CLIENT_ID = 0x190
SOCKETCAND_PORT = 29536
ELM_PORT = 35000
ELM_BANNER = "ELM327 v1.5"
RECEIVED_KEPT = 10_000  # frames the simulator remembers for tests (frames_from)

Deliver = Callable[[int, bytes], None]


# --------------------------------------------------------------------------------- the wire
CAN_CRC15 = 0x4599
# After the CRC: delimiter, ACK slot, ACK delimiter, 7 bits end of frame, 3 bits intermission.
CAN_TAIL_BITS = 13


def can_crc15(bits: list[int]) -> int:
    """The CAN CRC (polynomial 0x4599, initial 0) of a bit sequence, most significant first."""
    crc = 0
    for bit in bits:
        feedback = bit ^ (crc >> 14)
        crc = (crc << 1) & 0x7FFF
        if feedback:
            crc ^= CAN_CRC15
    return crc


def can_frame_bits(arbitration_id: int, data: bytes) -> int:
    """Bit times a classic CAN data frame with an 11-bit id occupies the bus, stuff bits and
    interframe space included: 47 + 8 per data byte plus the stuff bits its content calls for
    (103-125 for the heat pump's 7-byte telegrams)."""
    fields = [(0, 1), (arbitration_id, 11), (0, 3), (len(data), 4)]  # SOF, id, RTR IDE r0, DLC
    bits = [v >> i & 1 for v, n in fields + [(b, 8) for b in data] for i in reversed(range(n))]
    crc = can_crc15(bits)
    bits += [crc >> i & 1 for i in reversed(range(15))]
    stuffed, run, last = 0, 0, -1
    for bit in bits:  # a complementary bit after five equal ones, which starts the next run
        run, last = (run + 1, last) if bit == last else (1, bit)
        if run == 5:
            stuffed, run, last = stuffed + 1, 1, 1 - bit
    return len(bits) + stuffed + CAN_TAIL_BITS


class SimBus:
    """The simulated wire: a frame sent by one station reaches every other station.

    Delivery runs in the sender's thread, so a station's ``deliver`` must only queue or
    schedule work, never send in turn. With a ``bitrate``, frames take the bus one after
    another for their frame time (:func:`can_frame_bits`) and reach the others when it ends;
    the sender's thread waits meanwhile, as a CAN controller does.
    """

    def __init__(self, bitrate: int | None = None) -> None:
        self._stations: list[Deliver] = []
        self._lock = threading.Lock()
        self.bitrate = bitrate
        self._wire = threading.Lock()  # held by the frame on the bus
        self.busy_s = 0.0  # frame time the bus has carried, for tests and benchmarks

    def attach(self, deliver: Deliver) -> None:
        with self._lock:
            self._stations.append(deliver)

    def detach(self, deliver: Deliver) -> None:
        with self._lock:
            if deliver in self._stations:
                self._stations.remove(deliver)

    def send(self, origin: Deliver | None, arbitration_id: int, data: bytes) -> None:
        if not self.bitrate:
            self._deliver(origin, arbitration_id, data)
            return
        frame_s = can_frame_bits(arbitration_id, data) / self.bitrate
        with self._wire:  # delivered inside, so stations see frames in bus order
            time.sleep(frame_s)
            self.busy_s += frame_s
            self._deliver(origin, arbitration_id, data)

    def _deliver(self, origin: Deliver | None, arbitration_id: int, data: bytes) -> None:
        with self._lock:
            stations = list(self._stations)
        for deliver in stations:
            if deliver != origin:  # bound methods compare equal, they are not identical
                deliver(arbitration_id, data)


class _Scheduler:
    """One thread running timed actions: node replies after their latency, background polls."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="hpsu-sim", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def call_later(self, delay: float, action: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), action))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(2.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopping:
                    return
                _, _, action = heapq.heappop(self._heap)
            try:
                action()
            except Exception:  # one broken action must not stop the simulated heat pump
                log.exception("simulator action failed")


# --------------------------------------------------------------------------------- the model
# Engineering values at start; anything not listed gets a plausible nonzero default, so a
# client that takes a ``00 00`` request for a reply shows a visibly wrong value.
INITIAL_VALUES: dict[str, float] = {
    "t_hs": 35.2, "t_hs_set": 35.0, "t_return": 30.1, "t_dhw": 46.5, "t_dhw_set": 48.0,
    "t_dhw_setpoint1": 48.0, "t_ext": 4.5, "t_hc": 33.5, "t_hc_set": 34.0, "t_room": 21.3,
    "water_pressure": 1.85, "flow_rate": 1392, "status_pump": 1, "runtime_comp": 408,
    "runtime_pump": 1020, "qch": 2223, "qwp": 5210, "qdhw": 1830, "mode_01": 3, "mode": 1,
    "error": 0, "heat_slope": 0.5, "posmix": 40, "pump": 65, "t_room1_setpoint": 21.0,
}


def _default_value(cmd: Command) -> float:
    if cmd.value_codes:
        codes = sorted(set(cmd.value_codes.values()))
        return next((code for code in codes if code), codes[0])
    if cmd.min is not None and cmd.max is not None:
        return round((cmd.min + cmd.max) / 2 * cmd.divisor) / cmd.divisor or cmd.max
    return 20.0 if cmd.signed else 1


def _wave(t: float, period_s: float, amplitude: float) -> float:
    return amplitude * math.sin(2 * math.pi * t / period_s)


class HpsuModel:
    """The nodes' registers: one raw word per (node, index), some driven by a small model."""

    def __init__(self, commands: dict[str, Command], drift: bool):
        self.commands = commands
        self.drift = drift
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._raw = {(cmd.node, cmd.index): 0 for cmd in commands.values()}
        self._writable = {(cmd.node, cmd.index) for cmd in commands.values() if cmd.writable}
        for cmd in commands.values():
            try:
                self.set_value(cmd.name, INITIAL_VALUES.get(cmd.name, _default_value(cmd)))
            except ValueError:  # an initial value outside the command's limits
                self.set_value(cmd.name, _default_value(cmd))
        self.nodes = frozenset(node for node, _ in self._raw)
        # How the drifting values follow the others (engineering units, t in seconds).
        self._dynamics: dict[str, Callable[[float], float]] = {
            "t_ext": lambda t: INITIAL_VALUES["t_ext"] + _wave(t, 900, 3.0),
            "t_hs": lambda t: self.value("t_hs_set") + _wave(t, 120, 1.0),
            "t_return": lambda t: self.value("t_hs_set") - 5 + _wave(t, 150, 0.5),
            "t_dhw": lambda t: self.value("t_dhw_setpoint1") - 1.5 + _wave(t, 600, 1.0),
            "water_pressure": lambda t: INITIAL_VALUES["water_pressure"] + _wave(t, 60, 0.02),
            "flow_rate": lambda t: INITIAL_VALUES["flow_rate"] + _wave(t, 90, 40),
            "runtime_comp": lambda t: INITIAL_VALUES["runtime_comp"] + t // 3600,
        }

    def read(self, node: int, index: int) -> int | None:
        """The word a node reports for ``index`` now; None for an index it does not know."""
        if self.drift:
            t = time.monotonic() - self._t0
            for name, law in self._dynamics.items():
                cmd = self.commands.get(name)
                if cmd is not None and (cmd.node, cmd.index) == (node, index):
                    self.set_value(name, law(t))
        with self._lock:
            return self._raw.get((node, index))

    def write(self, node: int, index: int, raw: int) -> bool:
        """Store a written word; the nodes ignore writes to read-only or unknown indexes."""
        with self._lock:
            if (node, index) not in self._writable:
                return False
            self._raw[(node, index)] = raw & 0xFFFF
            return True

    def set_value(self, name: str, value: float | str) -> None:
        """Set ``name`` in engineering units or by label (ValueError outside its limits)."""
        cmd = self.commands[name]
        word = protocol.encode_value(cmd, value)
        key = (cmd.node, cmd.index)
        with self._lock:
            if cmd.mask is not None:  # one view of a shared bit-field word
                word |= self._raw[key] & ~cmd.mask & 0xFFFF
            self._raw[key] = word

    def set_raw(self, name: str, word: int) -> None:
        """Store a raw 16-bit word for ``name``'s index, e.g. 0x8000, the "no value" word a
        node sends for a sensor that is not fitted."""
        cmd = self.commands[name]
        if not 0 <= word <= 0xFFFF:
            raise ValueError(f"raw word {word} does not fit in 16 bits")
        with self._lock:
            self._raw[(cmd.node, cmd.index)] = word

    def value(self, name: str) -> float | int | None:
        """The decoded value of ``name`` as a client would read it now."""
        cmd = self.commands[name]
        with self._lock:
            raw = self._raw[(cmd.node, cmd.index)]
        return protocol.decode_word(cmd, raw)


# ------------------------------------------------------------------------------ TCP plumbing
class _Writer:
    """Sends queued text on a socket from its own thread, so a slow reader never blocks the bus."""

    def __init__(self, conn: socket.socket):
        self._conn = conn
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def put(self, text: str) -> None:
        self._queue.put(text.encode("ascii"))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(2.0)

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            try:
                self._conn.sendall(chunk)
            except OSError:
                return


# ------------------------------------------------------------------------------ socketcand
class _SocketcandSession:
    """Server side of socketcand's ASCII protocol, raw mode only (what python-can uses)."""

    def __init__(self, sim: "HpsuSimulator", conn: socket.socket, channel: str):
        self._sim = sim
        self._conn = conn
        self._channel = channel
        self._writer = _Writer(conn)
        self._raw_mode = False
        self._forwarding = False

    def run(self) -> None:
        self._writer.put("< hi >")
        buffer = ""
        try:
            while chunk := self._conn.recv(4096):
                buffer += chunk.decode("ascii", "replace")
                while (end := buffer.find(">")) >= 0:
                    start = buffer.find("<")
                    if 0 <= start < end:
                        self._handle(buffer[start + 1 : end].split())
                    buffer = buffer[end + 1 :]
        finally:
            self._sim.bus.detach(self._deliver)
            self._writer.close()

    def _handle(self, words: list[str]) -> None:
        if not words:
            return
        verb = words[0]
        if verb == "open" and len(words) == 2 and not self._raw_mode:
            known = words[1] == self._channel
            self._writer.put("< ok >" if known else "< error could not open bus >")
        elif verb == "rawmode" and not self._raw_mode:
            self._raw_mode = True
            self._writer.put("< ok >")
            self._sim.bus.attach(self._deliver)
            # python-can reads the handshake with one recv() and compares it exactly, so the
            # first frame must not ride in the same segment as this "< ok >": frames flow once
            # the client speaks, or shortly after.
            self._sim.scheduler.call_later(0.1, self._start_forwarding)
        elif verb == "send" and self._raw_mode:
            self._start_forwarding()
            try:
                arbitration_id, dlc = int(words[1], 16), int(words[2], 16)
                data = bytes(int(word, 16) for word in words[3:])
            except (IndexError, ValueError):
                self._writer.put("< error malformed send >")
                return
            if len(data) != dlc or dlc > 8:
                self._writer.put("< error malformed send >")
                return
            self._sim.inject(self._deliver, arbitration_id, data)
        elif verb == "echo":
            self._writer.put("< echo >")
        else:
            self._writer.put(f"< error unknown command {verb} >")

    def _start_forwarding(self) -> None:
        self._forwarding = True

    def _deliver(self, arbitration_id: int, data: bytes) -> None:
        if self._forwarding:
            stamp = f"{time.time():.6f}"
            if self._sim.take_corrupt():
                self._writer.put(f"junk< frame 1G{arbitration_id:03X} {stamp} Z{data.hex()} >< fr")
            self._writer.put(f"< frame {arbitration_id:03X} {stamp} {data.hex().upper()} >")


# ------------------------------------------------------------------------------ ELM327
class _ElmMemory:
    """What an ELM327 keeps across resets and power cycles: protocol and programmable params."""

    def __init__(self) -> None:
        self.protocol = "0"
        self.pp_values: dict[int, int] = {}
        self.pp_enabled: set[int] = set()


class _ElmSession:
    """One ELM327 adapter on a TCP connection: AT commands, payload lines, reply frames."""

    PP_BITRATE = 0x2F  # protocol C bitrate divisor of 500 kbit/s
    FLAGS = {"E": "echo", "H": "headers", "S": "spaces", "V": "variable_dlc", "CAF": "auto_format",
             "R": "responses"}
    FACTORY_DIVISOR = 0x0A  # 50 kbit/s

    def __init__(self, sim: "HpsuSimulator", conn: socket.socket, memory: _ElmMemory):
        self._sim = sim
        self._conn = conn
        self._memory = memory
        self._rx: queue.SimpleQueue[tuple[int, bytes]] = queue.SimpleQueue()
        self._listening = False
        self._reset()

    def _reset(self) -> None:
        self.echo, self.headers, self.spaces = True, False, True
        self.variable_dlc, self.auto_format, self.responses = False, True, True
        self.header, self.receive_filter = 0x7DF, None
        memory = self._memory
        divisor = memory.pp_values.get(self.PP_BITRATE, self.FACTORY_DIVISOR)
        # Programmable parameters take effect at a reset, not when they are set.
        enabled = self.PP_BITRATE in memory.pp_enabled
        self.bitrate_divisor = divisor if enabled else self.FACTORY_DIVISOR

    def run(self) -> None:
        self._sim.bus.attach(self._deliver)
        buffer = b""
        try:
            while chunk := self._conn.recv(4096):
                buffer += chunk
                while b"\r" in buffer:
                    line, buffer = buffer.split(b"\r", 1)
                    self._execute(line.decode("ascii", "replace").strip("\n "))
        finally:
            self._sim.bus.detach(self._deliver)

    def _execute(self, line: str) -> None:
        if not line:
            return
        if self.echo:  # echoed as typed, so ATE0 itself still is
            self._print(line)
        command = line.replace(" ", "").upper()
        if command.startswith("AT"):
            for text in self._answer(command):
                self._print(text)
        else:
            self._transmit(command)
        self._conn.sendall(b"\r>")

    def _print(self, text: str) -> None:
        self._conn.sendall(text.encode("ascii") + b"\r")

    def _answer(self, command: str) -> list[str]:
        at = command[2:]
        if at in ("Z", "WS"):
            self._reset()
            return ["", ELM_BANNER]
        if at == "I":
            return [ELM_BANNER]
        if at == "D":
            self._reset()
            return ["OK"]
        if match := re.fullmatch(r"(E|H|S|V|CAF|R)([01])", at):
            setattr(self, self.FLAGS[match[1]], match[2] == "1")
            return ["OK"]
        # Accepted without effect: the reply window is the simulator's elm_timeout_s.
        if re.fullmatch(r"(L[01]|AT[012]|M[01]|ST[0-9A-F]{2})", at):
            return ["OK"]
        if match := re.fullmatch(r"SPA?([0-9A-C])", at):
            self._memory.protocol = match[1]
            return ["OK"]
        if match := re.fullmatch(r"SH([0-9A-F]{3})", at):
            self.header = int(match[1], 16)
            return ["OK"]
        if match := re.fullmatch(r"CRA([0-9A-F]{3})?", at):
            self.receive_filter = int(match[1], 16) if match[1] else None
            return ["OK"]
        if at.startswith("PP"):
            return self._programmable_parameter(at[2:])
        if at == "RV":
            return ["12.6V"]
        return ["?"]

    def _programmable_parameter(self, rest: str) -> list[str]:
        if not self._sim.elm_pp:
            return ["?"]
        memory = self._memory
        if match := re.fullmatch(r"([0-9A-F]{2})SV([0-9A-F]{2})", rest):
            memory.pp_values[int(match[1], 16)] = int(match[2], 16)
            return ["OK"]
        if match := re.fullmatch(r"([0-9A-F]{2})(ON|OFF)", rest):
            pp = int(match[1], 16)
            (memory.pp_enabled.add if match[2] == "ON" else memory.pp_enabled.discard)(pp)
            return ["OK"]
        if rest == "S":
            return [f"{pp:02X}:{value:02X} {'N' if pp in memory.pp_enabled else 'F'}"
                    for pp, value in sorted(memory.pp_values.items())] or ["OK"]
        return ["?"]

    def _transmit(self, command: str) -> None:
        """Send a payload line as a frame; print each frame heard until the window closes, or
        until the line's response count is reached; with responses off (AT R0) none."""
        request = elm327.payload_from_line(command)
        if request is None:
            self._print("?")
            return
        payload, count = request
        if count is not None and not self._sim.elm_counts:
            self._print("?")  # an adapter older than v1.3 knows no response count
            return
        formatting = self._formatting()
        if formatting:  # ISO 15765-4 single frame: a length byte first, 7 bytes at most
            if len(payload) > 7:
                self._print("?")
                return
            payload = bytes([len(payload)]) + payload
        if not self.variable_dlc:
            payload = payload.ljust(8, b"\x00")
        if self._memory.protocol != "C" or self.bitrate_divisor != 0x19:
            self._print("CAN ERROR")  # wrong bitrate: nobody acknowledges the frame
            return
        while not self._rx.empty():
            self._rx.get_nowait()
        if not self.responses:
            self._sim.inject(self._deliver, self.header, payload)
            return
        self._listening = True
        shown = 0
        try:
            self._sim.inject(self._deliver, self.header, payload)
            # The reply window restarts with every frame shown, as on the real adapter.
            while shown != count:
                try:
                    arbitration_id, data = self._rx.get(timeout=self._sim.elm_timeout_s)
                except queue.Empty:
                    break
                if formatting and not (data and 1 <= data[0] <= 7 and len(data) > data[0]):
                    continue  # not an ISO 15765 single frame: the adapter shows nothing
                if self._sim.take_corrupt():
                    self._print("18" + self._format(arbitration_id, data)[2:].replace(" ", "@"))
                self._print(self._format(arbitration_id, data))
                shown += 1
        finally:
            self._listening = False
        if not shown:
            self._print("NO DATA")

    def _formatting(self) -> bool:
        """CAN auto formatting applies to the ISO 15765 protocols (6-9) only: on the user
        protocols B and C the CAN options (PP 2C/2E, factory 0x80 on C: "no formatting") rule,
        so pyHPSU and FHEM, which never send AT CAF0, see the heat pump's frames as they are."""
        return self.auto_format and self._memory.protocol not in ("B", "C")

    def _format(self, arbitration_id: int, data: bytes) -> str:
        return elm327.frame_line(arbitration_id, data, self.headers, self.spaces)

    def _deliver(self, arbitration_id: int, data: bytes) -> None:
        if self._listening and self.receive_filter in (None, arbitration_id):
            self._rx.put((arbitration_id, data))


# ------------------------------------------------------------------------------ virtual
class _VirtualGateway:
    """Bridges a python-can virtual channel (other objects in this process) onto the bus."""

    def __init__(self, sim: "HpsuSimulator", channel: str):
        self._sim = sim
        self._bus = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hpsu-sim-virtual", daemon=True)
        sim.bus.attach(self._deliver)
        self._thread.start()

    def _deliver(self, arbitration_id: int, data: bytes) -> None:
        if not self._stop.is_set():
            self._bus.send(can.Message(arbitration_id=arbitration_id, data=data,
                                       is_extended_id=False))

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._bus.recv(0.05)  # short, so stop() is noticed
            if message is not None and not message.is_extended_id:
                self._sim.inject(self._deliver, message.arbitration_id, bytes(message.data))

    def close(self) -> None:
        self._sim.bus.detach(self._deliver)
        self._stop.set()
        self._thread.join(2.0)
        self._bus.shutdown()


# ------------------------------------------------------------------------------ simulator
class HpsuSimulator(Simulator):
    """The simulated heat pump with its gateways; use as a context manager or start()/stop().

    ``channel='virtual://name'`` bridges a python-can virtual channel; ``socketcand_port`` and
    ``elm_port`` (0 = any free port, None = off) open the TCP gateways on ``host``.
    """

    # The heat pump's own faults (beside offline/online, drop, delay, corrupt), by name.
    FAULTS = {
        "error": Fault("CODE", "the heat pump's error code (0: none)", lambda sim, code: sim.set_error(int(code))),
        "mute": Fault("NAME...", "the nodes stop answering these commands (e.g. t_hs)", lambda sim, *names: sim.mute(*names)),
        "refuse-writes": Fault("NAME...", "the nodes ignore writes to these commands",
                               lambda sim, *names: sim.refuse_writes(*names)),
        "value": Fault("NAME VALUE", "set a value on the bus (e.g. t_ext -5, mode_01 heating)",
                       lambda sim, name, value: sim.set_value(name, value)),
    }

    def __init__(
        self,
        channel: str | None = None,
        socketcand_port: int | None = None,
        elm_port: int | None = None,
        host: str = "127.0.0.1",
        latency_s: float = 0.02,
        background_rate_hz: float = 0.0,
        mimic_clients: bool = False,
        elm_pp: bool = True,
        elm_counts: bool = True,
        elm_timeout_s: float = 0.1,
        drift: bool = True,
        seed: int | None = None,
        socketcand_channel: str = "can0",
        commands: dict[str, Command] | None = None,
        bitrate: int | None = None,
    ):
        if channel is not None and not channel.startswith("virtual://"):
            raise ValueError(f"channel {channel!r}: expected virtual://<name>")
        self.commands = commands if commands is not None else load_commands()
        self.model = HpsuModel(self.commands, drift)
        self.bus = SimBus(bitrate)  # None: frames cross at once; 20000: the HPSU's 20 kbit/s
        self.scheduler = _Scheduler()
        self.host = host
        self.latency_s = latency_s
        self.background_rate_hz = background_rate_hz
        self.mimic_clients = mimic_clients
        self.elm_pp = elm_pp
        self.elm_counts = elm_counts  # takes a response count after the data (ELM327 v1.3+)
        self.elm_timeout_s = elm_timeout_s
        # The last frames clients put on the bus (bounded: the display and the other client
        # poll for ever, and a list grew by ~20 frames/s in a long demo).
        self.received: collections.deque[tuple[int, bytes]] = collections.deque(
            maxlen=RECEIVED_KEPT
        )
        self._corrupt = 0
        self._channel = channel
        self._socketcand_port = socketcand_port
        self._socketcand_channel = socketcand_channel
        self._elm_port = elm_port
        self._elm_memory = _ElmMemory()
        self._online = True
        self._muted: set[tuple[int, int]] = set()
        self._write_refused: set[tuple[int, int]] = set()
        self._random = random.Random(seed)
        # Requests from these come from the simulation itself, not from a client.
        self._stations = self.model.nodes | {DISPLAY_ID, OTHER_CLIENT_ID}
        self._polled = [cmd for cmd in self.commands.values() if cmd.refresh == "fast"] or list(
            self.commands.values()
        )
        self._lock = threading.Lock()
        self._virtual: _VirtualGateway | None = None
        self._socketcand: TcpServer | None = None
        self._elm: TcpServer | None = None
        self.socketcand_port: int | None = None
        self.elm_port: int | None = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> "HpsuSimulator":
        self.bus.attach(self._node_hears)
        self.scheduler.start()
        if self._channel is not None:
            self._virtual = _VirtualGateway(self, self._channel.removeprefix("virtual://"))
        if self._socketcand_port is not None:
            self._socketcand = TcpServer(
                self.host, self._socketcand_port,
                lambda conn: _SocketcandSession(self, conn, self._socketcand_channel).run(),
                "hpsu-sim-socketcand",
            )
            self.socketcand_port = self._socketcand.port
        if self._elm_port is not None:
            self._elm = TcpServer(
                self.host, self._elm_port,
                lambda conn: _ElmSession(self, conn, self._elm_memory).run(), "hpsu-sim-elm",
            )
            self.elm_port = self._elm.port
        if self.background_rate_hz > 0:
            self.scheduler.call_later(0.0, self._background)
        return self

    def stop(self) -> None:
        self.scheduler.stop()
        for server in (self._socketcand, self._elm):
            if server is not None:
                server.close()
        if self._virtual is not None:
            self._virtual.close()
        self.bus.detach(self._node_hears)

    @property
    def urls(self) -> list[str]:
        """The Urls a driver can use to reach this simulator."""
        urls = [self._channel] if self._channel else []
        if self.socketcand_port is not None:
            urls.append(
                f"socketcand://{self.host}:{self.socketcand_port}/{self._socketcand_channel}")
        if self.elm_port is not None:
            urls.append(f"elm327+tcp://{self.host}:{self.elm_port}")
        return urls

    def banner(self) -> str:
        return "heat pump simulator: " + self.url

    # -- faults and model -------------------------------------------------------------------
    def set_online(self, online: bool) -> None:
        """Offline: the heat pump (nodes and display) is silent; the gateways stay up."""
        self._online = online

    def set_delay(self, seconds: float) -> None:
        """The nodes answer this late (their latency; beyond a client's timeout it is silence)."""
        if seconds < 0:
            raise ValueError(f"delay {seconds} s must be >= 0")
        self.latency_s = seconds

    def drop_connections(self) -> None:
        for server in (self._socketcand, self._elm):
            if server is not None:
                server.drop_connections()

    def set_error(self, code: int) -> None:
        self.model.set_value("error", code)

    def set_value(self, name: str, value: float | str) -> None:
        self.model.set_value(name, value)

    def set_raw(self, name: str, word: int) -> None:
        self.model.set_raw(name, word)

    def value(self, name: str) -> float | int | None:
        return self.model.value(name)

    def corrupt_next(self, count: int = 1) -> None:
        """The next ``count`` frames a gateway forwards are each preceded by a malformed copy
        (socketcand: a bad message with stray bytes around it; ELM327: a garbled line)."""
        with self._lock:
            self._corrupt += count

    def take_corrupt(self) -> bool:
        with self._lock:
            if self._corrupt <= 0:
                return False
            self._corrupt -= 1
            return True

    def mute(self, *names: str) -> None:
        """The nodes stop answering reads of these commands' indexes."""
        self._muted.update((self.commands[n].node, self.commands[n].index) for n in names)

    def refuse_writes(self, *names: str) -> None:
        """The nodes silently ignore writes to these commands (a write that does not take)."""
        self._write_refused.update((self.commands[n].node, self.commands[n].index) for n in names)

    def frames_from(self, sender: int) -> list[bytes]:
        with self._lock:
            return [data for arbitration_id, data in self.received if arbitration_id == sender]

    # -- the bus ----------------------------------------------------------------------------
    def inject(self, origin: Deliver, arbitration_id: int, data: bytes) -> None:
        """A client's frame enters the bus through a gateway."""
        with self._lock:
            self.received.append((arbitration_id, data))
        self.bus.send(origin, arbitration_id, data)

    def _node_hears(self, arbitration_id: int, data: bytes) -> None:
        try:
            telegram = protocol.parse_telegram(arbitration_id, data)
        except ValueError:
            return
        node, index = telegram.target, telegram.index
        if not self._online or node not in self.model.nodes:
            return
        if telegram.msg_type == protocol.MSG_READ:
            if (node, index) not in self._muted:
                self.scheduler.call_later(
                    self.latency_s, lambda: self._reply(arbitration_id, node, index, telegram.fa)
                )
            if self.mimic_clients and arbitration_id not in self._stations:
                self.scheduler.call_later(0.0, lambda: self._mimic(node, index, telegram.fa))
        elif telegram.msg_type in (protocol.MSG_WRITE, protocol.MSG_RESPONSE):
            # Type 2 addressed to a node is how pyHPSU writes; the nodes accept it too.
            if (node, index) not in self._write_refused:
                self.model.write(node, index, telegram.value)

    def _reply(self, requester: int, node: int, index: int, fa: bool) -> None:
        if not self._online:
            return
        raw = self.model.read(node, index)
        if raw is not None:
            data = protocol.encode_telegram(requester, protocol.MSG_RESPONSE, index, raw, fa=fa)
            self.bus.send(self._node_hears, node, data)

    def _request(self, requester: int, node: int, index: int, fa: bool) -> None:
        if self._online:
            data = protocol.encode_telegram(node, protocol.MSG_READ, index, 0, fa=fa)
            self.bus.send(None, requester, data)

    def poll(self, name: str, requester: int = DISPLAY_ID) -> None:
        """Another station (the display by default) reads ``name`` now; the node answers it."""
        cmd = self.commands[name]
        self.scheduler.call_later(0.0, lambda: self._request(requester, cmd.node, cmd.index,
                                                             cmd.form == "fa"))

    def _mimic(self, node: int, index: int, fa: bool) -> None:
        """Everyone else asks for the same index right away, ahead of the client's reply:
        another client and the display ask the node, and the node itself asks a peer module
        — a frame from the very node the client waits for, with its index and ``00 00``."""
        self._request(OTHER_CLIENT_ID, node, index, fa)
        self._request(DISPLAY_ID, node, index, fa)
        self._request(node, min(self.model.nodes - {node}), index, fa)

    def _background(self) -> None:
        """The display and another client polling, as on a real installation."""
        cmd = self._random.choice(self._polled)
        requester = self._random.choice((DISPLAY_ID, OTHER_CLIENT_ID))
        self._request(requester, cmd.node, cmd.index, cmd.form == "fa")
        if self.background_rate_hz > 0:
            self.scheduler.call_later(1.0 / self.background_rate_hz, self._background)


# ------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--socketcand-port", type=int, default=SOCKETCAND_PORT,
                        help="socketcand server port (0 = any free port, -1 = off)")
    parser.add_argument("--elm-port", type=int, default=ELM_PORT,
                        help="ELM327 emulator port (0 = any free port, -1 = off)")
    parser.add_argument("--no-pp", action="store_true",
                        help="emulate an ELM327 clone without programmable parameters")
    parser.add_argument("--no-response-count", action="store_true",
                        help="emulate an ELM327 older than v1.3 ('?' to a response count)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="node reply latency")
    parser.add_argument("--background-rate", type=float, default=5.0,
                        help="RoCon display / other client requests per second (0 = quiet bus)")
    parser.add_argument("--mimic-clients", action="store_true",
                        help="another client re-reads every index a client asks for")
    parser.add_argument("--elm-timeout-ms", type=float, default=100.0,
                        help="ELM327 reply window after each frame it shows (what AT ST with "
                             "adaptive timing comes to on a real adapter)")
    parser.add_argument("--bitrate", type=int, default=0,
                        help="CAN frames take their frame time at this bit rate (the HPSU: "
                             "20000; 0 = frames cross at once)")
    add_fault_arguments(parser, HpsuSimulator.faults())


def run(args: argparse.Namespace) -> int:
    return HpsuSimulator(
        socketcand_port=None if args.socketcand_port < 0 else args.socketcand_port,
        elm_port=None if args.elm_port < 0 else args.elm_port,
        host=args.host,
        latency_s=args.latency_ms / 1000.0,
        background_rate_hz=args.background_rate,
        mimic_clients=args.mimic_clients,
        elm_pp=not args.no_pp,
        elm_counts=not args.no_response_count,
        elm_timeout_s=args.elm_timeout_ms / 1000.0,
        bitrate=args.bitrate or None,
    ).serve(args)
