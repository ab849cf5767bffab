"""HPSU driver: reads and writes the heat pump's parameters over one CAN port.

One request in flight at a time (the link's lock), each reply matched strictly
(``protocol.match_response``: right node, type 2, addressed to us, same index, 7 bytes), never a
fixed sleep. What the bus carries anyway is used: a reply from a node to the RoCon display
(0x10A) or to us for an index we track refreshes that value without a request of our own.

Refresh classes from the table: ``fast`` commands are read every cycle, ``slow`` ones (settings,
counters) every ``slow_period_s``; their last values are kept in between.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ...server.errors import CommError, NotVerified
from ...server.links import Link, acquire, release
from . import protocol, transport
from .table import DISPLAY_ADDRESS, Command, DEFAULT_MONITORING, load_commands

log = logging.getLogger(__name__)

OWN_ID = 0x680  # the "PC / ComfortSoft" address FHEM, ioBroker and ESPHome use
# Connectivity is judged by this command, which every RoCon answers: when it goes unanswered
# the heat pump (or the bus) is gone. Any other unanswered command is an index this unit lacks.
REQUIRED = ("mode_01",)
PROBE_COMMANDS = 3  # connect() tries this many tracked commands before giving up


class NoReply(Exception):
    """One command went unanswered after its retries.

    Not a :class:`CommError`: an index this unit does not know is not a dead link (``refresh``
    decides that from the whole cycle), so a failed ``read`` must not make the worker reconnect.
    """


class WriteNotVerified(NotVerified):
    """The heat pump did not take a write: the value read back differs from the one sent."""


@dataclass
class Counters:
    """What the driver did, for the benchmark and diagnostics."""

    requests: int = 0         # frames sent (read attempts and writes)
    replies: int = 0          # replies matched to our requests
    timeouts: int = 0         # read attempts that got no reply
    failed_reads: int = 0     # commands that got no reply after all retries
    passive_updates: int = 0  # values taken from traffic we did not ask for
    skipped: int = 0          # requests saved because a passive update was fresh
    writes: int = 0


class HpsuDriver:
    """Synchronous driver for the I/O worker: ``connect``, ``refresh``, ``read``, ``write``."""

    def __init__(
        self,
        url: str,
        own_id: int = OWN_ID,
        commands: Iterable[str] | None = None,
        timeout: float = 1.0,
        retries: int = 2,
        slow_period_s: float = 60.0,
    ):
        self.table = load_commands()
        nodes = {cmd.node for cmd in self.table.values()}
        if not 0 <= own_id <= 0x7FF:
            raise ValueError(f"own id 0x{own_id:X} is not an 11-bit CAN address (0..0x7FF)")
        if own_id == DISPLAY_ADDRESS or own_id in nodes:
            raise ValueError(
                f"own id 0x{own_id:03X} belongs to the RoCon display or a heat pump node; "
                f"use a free address such as 0x{OWN_ID:03X}"
            )
        if not 0 < timeout < math.inf:  # NaN and infinity too: a deadline must end
            raise ValueError(f"timeout must be positive, got {timeout}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        names = list(DEFAULT_MONITORING if commands is None else commands)
        unknown = [name for name in names if name not in self.table]
        if unknown:
            raise ValueError(f"unknown heat pump command(s): {', '.join(unknown)}")
        self.url = url
        self.own_id = own_id
        self.timeout = timeout
        self.retries = retries
        self.slow_period_s = slow_period_s
        names = list(dict.fromkeys(names))
        # Required commands first: a silent heat pump is noticed after one command's retries.
        self.required = [name for name in REQUIRED if name in names]
        names = self.required + [name for name in names if name not in self.required]
        self.tracked: list[Command] = [self.table[name] for name in names]
        self._port = transport.opener(url, nodes)  # checks the Url now
        self._tracked_names = frozenset(cmd.name for cmd in self.tracked)
        # (node, index) → tracked commands: the key of a reply heard on the bus.
        self._by_address: dict[tuple[int, int], list[Command]] = {}
        for cmd in self.tracked:
            self._by_address.setdefault((cmd.node, cmd.index), []).append(cmd)
        self._values: dict[str, Any] = {}
        self._read_at: dict[str, float] = {}  # monotonic time of each value's last update
        self._link: Link | None = None
        self.counters = Counters()
        self.learned: dict[str, Any] = {}  # what a job's read or read-back told the worker
        # Commands that went unanswered: re-probed every slow period, not every cycle.
        self._unanswered: dict[str, float] = {}
        self.unanswered: tuple[str, ...] = ()  # their names, replaced whole (read by the device)

    # -- life cycle ---------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the port and check that the heat pump answers (CommError if it does not)."""
        if self._link is None:
            self._link = acquire(self._port.key, self._port.open, self._port.settings)
        with self._link.lock:
            self._link.transport()
        probes = self.tracked[:PROBE_COMMANDS] or [self.table[DEFAULT_MONITORING[0]]]
        for cmd in probes:
            reply = self._request(cmd)
            if reply is not None:
                self._store(cmd, reply)
                return
        raise CommError(
            f"{self.url}: the heat pump does not answer "
            f"({', '.join(cmd.name for cmd in probes)} unanswered from 0x{self.own_id:03X})"
        )

    def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            release(link)

    # -- acquisition --------------------------------------------------------------------------
    def refresh(self, checkpoint: Callable[[], None] = lambda: None) -> dict[str, Any]:
        """Read what is due; every tracked name → its value, or None if unknown or invalid.

        ``checkpoint`` runs between two requests (and between the resends of one): the worker's
        queued jobs go there. A command that goes unanswered is marked and re-probed only every
        slow period, so an index this unit lacks costs its timeouts once, not every cycle.
        CommError when a required command (mode_01) or every command of the cycle goes unanswered.
        """
        cycle_start = time.monotonic()
        answered = asked = 0
        for cmd in self.tracked:
            if not self._due(cmd, cycle_start):
                continue
            asked += 1
            reply = self._request(cmd, checkpoint)
            if reply is None:
                self.counters.failed_reads += 1
                self._values[cmd.name] = None
                if cmd.name in self.required:
                    raise CommError(f"{self.url}: the heat pump does not answer {cmd.name} "
                                    f"(from 0x{self.own_id:03X}, {1 + self.retries} attempts)")
                if cmd.name not in self._unanswered:
                    log.warning("%s: no reply for %s; re-probing it every %g s",
                                self.url, cmd.name, self.slow_period_s)
                self._unanswered[cmd.name] = time.monotonic()
                self.unanswered = tuple(self._unanswered)
            else:
                self._store(cmd, reply)
                answered += 1
                if self._unanswered.pop(cmd.name, None) is not None:
                    self.unanswered = tuple(self._unanswered)
            checkpoint()
        if asked and not answered:
            raise CommError(f"{self.url}: no command answered in this cycle")
        return {cmd.name: self._values.get(cmd.name) for cmd in self.tracked}

    def _due(self, cmd: Command, cycle_start: float) -> bool:
        if cmd.name in self._unanswered:
            return cycle_start - self._unanswered[cmd.name] >= self.slow_period_s
        last = self._read_at.get(cmd.name)
        if last is None or self._values.get(cmd.name) is None:
            return True
        if cmd.refresh == "slow":
            return cycle_start - last >= self.slow_period_s
        if last >= cycle_start:  # the bus brought it during this cycle
            self.counters.skipped += 1
            return False
        return True

    def read(self, name: str) -> float | int | None:
        """Read one command now (any in the table); :class:`NoReply` if it stays unanswered."""
        cmd = self._command(name)
        reply = self._request(cmd)
        if reply is None:
            self.counters.failed_reads += 1
            raise NoReply(
                f"{self.url}: no reply from node 0x{cmd.node:03X} for {name} "
                f"after {1 + self.retries} attempts"
            )
        return self._store(cmd, reply)

    def write(self, name: str, value: float | int | str) -> float | int | None:
        """Write ``value`` (engineering units or a value-code label), read it back and return
        the value read. ValueError before anything is sent for a read-only name or a value
        outside its limits; :class:`WriteNotVerified` if the heat pump keeps another value."""
        cmd = self._command(name)
        frame = protocol.encode_write(cmd, value)
        # What a read must return if the write took: the same word, decoded the same way.
        expected = protocol.decode_word(cmd, protocol.parse_telegram(self.own_id, frame).value)
        self.counters.writes += 1
        self._transact(cmd, frame, 0.0, lambda *_: False)  # a write has no reply
        actual = None
        for _ in range(1 + self.retries):  # the node may apply it a moment later
            try:
                actual = self.read(name)
            except NoReply as exc:
                raise WriteNotVerified(f"{name}: sent {expected}, but the read-back went "
                                       f"unanswered: {exc}") from exc
            if _same(actual, expected):
                return actual
        raise WriteNotVerified(
            f"{name}: asked {value!r} (sent as {expected}), the heat pump reports {actual}"
        )

    # -- one request --------------------------------------------------------------------------
    def _request(self, cmd: Command, checkpoint: Callable[[], None] = lambda: None) -> bytes | None:
        """Send a read of ``cmd``, resending on timeout; the reply's data or None."""
        frame = protocol.encode_read(cmd)

        def is_reply(arbitration_id: int, data: bytes) -> bool:
            return protocol.match_response(cmd, self.own_id, arbitration_id, data)

        for attempt in range(1 + self.retries):
            if attempt:
                checkpoint()  # a job never waits behind more than one unanswered attempt
            reply = self._transact(cmd, frame, self.timeout, is_reply)
            if reply is not None:
                self.counters.replies += 1
                return reply
            self.counters.timeouts += 1
        return None

    def _transact(self, cmd: Command, frame: bytes, timeout: float, is_reply) -> bytes | None:
        link = self._link
        if link is None:
            raise CommError(f"{self.url}: not connected")
        with link.lock:
            try:
                port = link.transport()
                self.counters.requests += 1
                return port.transact(self.own_id, cmd.node, frame, timeout, is_reply, self._observe)
            except CommError:
                link.drop()  # whoever uses the link next reopens it
                raise

    def _observe(self, arbitration_id: int, data: bytes) -> None:
        """A frame that is not our reply: keep it if it is a node's reply, to the display or
        to us, for an index we track (the same strict rules as for our own replies)."""
        try:
            telegram = protocol.parse_telegram(arbitration_id, data)
        except ValueError:
            return
        if telegram.msg_type != protocol.MSG_RESPONSE or telegram.target not in (
            self.own_id, DISPLAY_ADDRESS
        ):
            return
        if len(data) != protocol.FRAME_LENGTH:
            return
        for cmd in self._by_address.get((arbitration_id, telegram.index), ()):
            self._store(cmd, data)
            self.counters.passive_updates += 1

    def _store(self, cmd: Command, data: bytes) -> float | int | None:
        value = protocol.decode_value(cmd, data)
        if cmd.name in self._tracked_names:
            self._values[cmd.name] = value
            self._read_at[cmd.name] = time.monotonic()
            self.learned[cmd.name] = value
        return value

    def _command(self, name: str) -> Command:
        try:
            return self.table[name]
        except KeyError:
            raise ValueError(f"unknown heat pump command {name!r}") from None


def _same(actual: float | int | None, expected: float | int | None) -> bool:
    if actual is None or expected is None:
        return actual is expected
    return math.isclose(actual, expected, rel_tol=0.0, abs_tol=1e-9)
