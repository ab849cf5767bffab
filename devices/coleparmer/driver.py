"""NC driver: one request/response at a time over any pyserial URL, with resend and checks.

A reply is used only if its lead, address, command echo, announced length, data length and
checksum are all right; anything else is discarded and the request resent (up to ``retries``),
because a wrong temperature or a 10×-off set point is worse than no value. Writes are
precision-aware (§6.3 of ``docs/neslab-nc.md``): the value is encoded at the precision the unit last
reported for that parameter, and the echo is compared with what was asked.
"""

from __future__ import annotations

import logging
import math
import termios
import time
from typing import Any, Callable, TypeVar

import serial

from ...server import errors
from ...server.links import CommError, Link, acquire, no_delay, release, serial_target
from . import protocol
from .protocol import FrameError

log = logging.getLogger(__name__)

# Read every RefreshPeriod; the limits and PID terms change only by a write, so slower.
FAST_PARAMETERS = ("InternalTemperature", "ExternalTemperature", "Setpoint")
# Reads poll the port in short slices against our own deadline, so the port's timeout never
# has to change (changing it renegotiates an rfc2217 port).
_POLL_S = 0.05
# Longest data a reply to our commands carries (RTE On/Off array); a larger n after a lead
# byte is noise, not a header.
_MAX_REPLY_DATA = 8

_T = TypeVar("_T")


class NoReply(CommError):
    """The chiller stayed silent: cable, baud rate, or serial mode off at the front panel."""

    @property
    def hint(self) -> str:
        """What the operator checks (Status): the message names cable, baud rate and panel."""
        return str(self).split(": ", 1)[-1].capitalize()


class NcErrorReply(errors.CommandRefused):
    """The chiller answered with an error frame (0F): the link works, the request was refused
    ("bad command": this model lacks it; "bad data": the value was rejected), so the operator
    must change the request or the Family property, not the cabling."""

    def __init__(self, message: str, error: protocol.ErrorReply):
        super().__init__(message)
        self.error = error


class ValueClamped(errors.NotVerified):
    """The chiller stored a different value than the one written (it limits to its range)."""

    def __init__(self, name: str, requested: float, accepted: float):
        super().__init__(
            f"{name}: the chiller stored {accepted:g} instead of {requested:g} "
            f"(outside its range)"
        )
        self.name, self.requested, self.accepted = name, requested, accepted


class PrecisionChanged(errors.NotVerified):
    """The unit's precision changed between the read and the write: the value sent was scaled
    for the old one, so the stored value is not what was asked (it is reported)."""


class CommandRefused(errors.CommandRefused):
    """The Set On/Off reply shows the unit kept its state: the chiller itself refused (a
    faulted unit will not start), so the fault must be cleared at the unit first."""


class NcDriver:
    """Cole-Parmer / NESLAB chiller over the NC protocol; see server/worker.py for the contract."""

    def __init__(
        self,
        url: str,
        family: str = "Polystat",
        address: int = 1,
        bus: str = "RS232",
        baudrate: int = 9600,
        timeout: float = 1.0,
        retries: int = 2,
        slow_refresh_s: float = 30.0,
    ):
        self.family = protocol.family(family)
        self.address = protocol.check_address(address, bus)
        self.bus = bus
        self.lead = protocol.lead_byte(bus)
        if not 0 < timeout < math.inf:  # NaN and infinity too: a deadline must end
            raise ValueError(f"timeout {timeout} s must be positive")
        if retries < 0:
            raise ValueError(f"retries {retries} must be 0 or more")
        self.url, self.baudrate, self.timeout, self.retries = url, baudrate, timeout, retries
        self._target, self._key = serial_target(url, url)
        self.slow_refresh_s = slow_refresh_s
        self.stray_bytes = 0  # bytes dropped while looking for a reply (noise, late replies)
        self.bad_replies = 0  # replies discarded (checksum, echo, length) and resent
        self._link: Link | None = None
        self._formats: dict[str, tuple[int, int]] = {}  # parameter → (decimals, width) last seen
        self.refused_reads = 0  # reads the unit answered "bad command" to (retried when slow due)
        self._refused_until: dict[str, float] = {}  # parameter → monotonic time of its retry
        self._slow: dict[str, Any] = {}
        self._slow_due = 0.0  # monotonic time of the next slow read; 0 = now
        self._on_off_length = self.family.on_off_lengths[0]
        self.learned: dict[str, Any] = {}  # what a write's echo told, for the worker's snapshot

    # -- life cycle --------------------------------------------------------------------------
    def connect(self) -> None:
        """Open (or share) the port and check that the chiller answers Read Acknowledge."""
        if self._link is None:
            self._link = acquire(
                self._key, self._open, {"protocol": "NESLAB NC", "baudrate": self.baudrate}
            )
        self._refused_until.clear()
        self._slow_due = 0.0
        self.read_acknowledge()

    def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            release(link)

    def _open(self) -> Any:
        # exclusive: a second program on the same tty (a forgotten terminal, another server)
        # would interleave frames with ours.
        port = serial.serial_for_url(
            self._target, baudrate=self.baudrate, timeout=min(self.timeout, _POLL_S), exclusive=True
        )
        no_delay(getattr(port, "_socket", None))  # socket:// terminal servers: no Nagle stall
        return port

    # -- reads -------------------------------------------------------------------------------
    def read_acknowledge(self) -> tuple[int, int]:
        """Protocol version the unit reports (e.g. (0, 1))."""
        data = self._transact(protocol.ACKNOWLEDGE, b"", _of_length(2))
        return data[0], data[1]

    def read(self, name: str) -> protocol.Reading:
        """Read one parameter by its Tango attribute name; remembers its precision for writes."""
        reading = self._transact(self._parameter(name).read, b"", self._decode_reading)
        previous = self._formats.get(name)
        if previous is not None and previous[0] != reading.decimals:
            log.info("%s: precision now %g", name, reading.precision)
        self._formats[name] = (reading.decimals, reading.width)
        return reading

    def read_status(self) -> dict[str, Any]:
        """Read Status decoded: StatusFlags, the family's booleans, StatusSeverity, StatusRaw."""
        data = self._transact(protocol.READ_STATUS, b"", bytes)
        try:
            flags, booleans, severity = protocol.decode_status(self.family.name, data)
        except FrameError as exc:
            # A well-formed reply of the wrong size: resending will not help, the family is wrong.
            raise errors.ConfigMismatch(f"{exc}: check the Family property") from None
        return {
            "StatusFlags": flags,
            **booleans,
            "StatusSeverity": severity,
            "StatusRaw": data.hex(" ").upper(),
        }

    def refresh(self, checkpoint: Callable[[], None] = lambda: None) -> dict[str, Any]:
        """Temperatures, set point and status every call; limits and PID terms when due.

        ``checkpoint`` runs between two transactions: the worker's queued jobs go there.
        """
        values: dict[str, Any] = {}
        readings = {}
        for name in self._fast_names():
            readings[name] = self._read_optional(name)
            checkpoint()
        values.update({name: r.value if r else None for name, r in readings.items()})
        values.update(self.read_status())
        checkpoint()
        if time.monotonic() >= self._slow_due:
            self._slow_due = time.monotonic() + self.slow_refresh_s
            slow = {}
            for name in self._slow_names():
                slow[name] = self._value(name)
                checkpoint()
            self._slow = slow
        values.update(self._slow)
        reference = readings.get("Setpoint") or readings.get("InternalTemperature")
        values["Precision"] = reference.precision if reference else None
        values["TemperatureUnit"] = reference.unit if reference else None
        return values

    def _fast_names(self) -> list[str]:
        return [n for n in FAST_PARAMETERS if n in self.family.parameters]

    def _slow_names(self) -> list[str]:
        return [n for n in self.family.parameters if n not in FAST_PARAMETERS]

    def _value(self, name: str) -> float | None:
        reading = self._read_optional(name)
        return reading.value if reading else None

    def _read_optional(self, name: str) -> protocol.Reading | None:
        """A parameter the unit answers "bad command" to (an RTE 110 has no cool PID, a
        Polystat may lack the external sensor) is invalid, not a lost link. It is asked again
        every slow period and counted, so a transient refusal never hides it until Init."""
        if time.monotonic() < self._refused_until.get(name, 0.0):
            return None
        try:
            reading = self.read(name)
        except NcErrorReply as exc:
            if exc.error.kind != protocol.BAD_COMMAND:
                raise
            self.refused_reads += 1
            log.warning("%s; asking again in %g s", exc, self.slow_refresh_s)
            self._refused_until[name] = time.monotonic() + self.slow_refresh_s
            return None
        self._refused_until.pop(name, None)
        return reading

    # -- writes ------------------------------------------------------------------------------
    def write(self, name: str, value: float) -> float:
        """Set a parameter at the unit's precision; returns the value the unit stored.

        ValueError (before anything is sent) if the value does not fit the NC field at that
        precision; ValueClamped if the unit stored another value; PrecisionChanged if the
        unit's precision changed meanwhile.
        """
        parameter = self._parameter(name)
        if parameter.set is None:
            raise ValueError(f"{name} is read-only")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name}: {value!r} is not a number")
        # What no precision can carry (NaN, infinity, beyond the widest field) is refused
        # before the precision read: a refused write puts nothing on the wire.
        protocol.to_raw(value, 0, max(self.family.value_lengths) - 1)
        # The precision is read now, in the same job as the write: the front panel can switch
        # it at any time, and a value scaled for another precision is off by 10× or more.
        reading = self.read(name)
        decimals, width = reading.decimals, reading.width
        raw = protocol.to_raw(value, decimals, width)
        request = raw.to_bytes(width, "big", signed=True)
        self._slow_due = 0.0  # the unit may adjust related values: re-read limits/PID next cycle
        reading = self._transact(parameter.set, request, self._decode_reading)
        self._formats[name] = (reading.decimals, reading.width)
        if reading.decimals != decimals:
            raise PrecisionChanged(
                f"{name}: the unit's precision changed from {10.0**-decimals:g} to "
                f"{reading.precision:g} during the write; it stored {reading.value:g}; write again"
            )
        self.learned[name] = reading.value  # the echo is what the unit now holds
        if name in self._slow:
            self._slow[name] = reading.value
        if reading.raw != raw:
            raise ValueClamped(name, raw / 10**decimals, reading.value)
        return reading.value

    def set_on(self, on: bool) -> dict[str, bool]:
        """Start or stop the unit (Set On/Off array, unit byte only) and return the settings
        the unit reports; CommandRefused if the unit byte did not take."""
        settings = self._on_off(on)
        self.learned["UnitOn"] = settings["unit on"]
        if settings["unit on"] != on:
            flags = self.read_status()["StatusFlags"]
            raise CommandRefused(
                f"the chiller reports unit {'on' if settings['unit on'] else 'off'} after the "
                f"{'On' if on else 'Off'} request; its status: {', '.join(flags) or 'no flag set'}. "
                "Clear the cause at the chiller, then try again"
            )
        return settings

    def _on_off(self, on: bool) -> dict[str, bool]:
        """Merlin/Polystat firmware takes 1, 4 or 5 settings depending on its version: use the
        length that last worked, and try the others when the unit rejects it."""
        others = [n for n in self.family.on_off_lengths if n != self._on_off_length]
        *tries, last = [self._on_off_length, *others]
        for length in tries:
            try:
                return self._on_off_of_length(on, length)
            except NcErrorReply as exc:
                log.info("%s; trying another On/Off array length", exc)
        return self._on_off_of_length(on, last)

    def _on_off_of_length(self, on: bool, length: int) -> dict[str, bool]:
        request = protocol.on_off_data(self.family.name, on, length)
        decode = _of_length(length, lambda data: protocol.decode_on_off(self.family.name, data))
        settings = self._transact(protocol.SET_ON_OFF, request, decode)
        self._on_off_length = length
        return settings

    def _decode_reading(self, data: bytes) -> protocol.Reading:
        return protocol.decode_reading(data, self.family.value_lengths)

    def _parameter(self, name: str) -> protocol.Parameter:
        try:
            return self.family.parameters[name]
        except KeyError:
            raise ValueError(
                f"{self.family.name} has no {name}: it has {', '.join(self.family.parameters)}"
            ) from None

    # -- transactions ------------------------------------------------------------------------
    def _transact(self, command: int, data: bytes, decode: Callable[[bytes], _T]) -> _T:
        """Send one request and return ``decode(reply data)`` of its valid reply.

        Resends after silence, a corrupt reply (including one ``decode`` rejects with
        FrameError: wrong length, impossible qualifier), or a "bad checksum" error reply.
        """
        if self._link is None:
            raise CommError("not connected")
        request = protocol.encode_frame(command, data, address=self.address, bus=self.bus)
        problems: list[str] = []
        link = self._link
        with link.lock:  # the whole exchange, resends included: the line is shared
            port = link.transport()
            for _ in range(1 + self.retries):
                try:
                    reply = self._exchange(link, port, request, command)
                    if reply is None:
                        problems.append("no reply")
                        continue
                    if reply.command == protocol.ERROR_REPLY:
                        error = protocol.decode_error(self.family.name, reply.data)
                        if error.kind == protocol.BAD_CHECKSUM:  # our request was damaged
                            problems.append("the chiller reported a bad checksum")
                            continue
                        raise NcErrorReply(self._describe(error, command), error)
                    return decode(reply.data)
                except FrameError as exc:
                    self.bad_replies += 1
                    problems.append(str(exc))
        if all(problem == "no reply" for problem in problems):
            raise NoReply(
                f"no reply from the chiller at address {self.address}: check the cable, the baud "
                f"rate ({self.baudrate}), and that serial mode is enabled on the front panel "
                f"(Computer button / RS232 ON in the setup loop)"
            )
        raise CommError(
            f"no valid reply to command {command:02X} from the chiller at address "
            f"{self.address} after {len(problems)} attempts: {'; '.join(problems)}"
        )

    def _exchange(
        self, link: Link, port: Any, request: bytes, command: int
    ) -> protocol.Frame | None:
        """Write one request and read one reply frame; None on silence (per the manual, the
        host resends when the unit has not answered within the timeout)."""
        try:
            waiting = port.in_waiting
            if waiting:  # a late reply or noise from before: not an answer to this request
                self.stray_bytes += len(port.read(waiting))
            port.write(request)
            port.flush()
            return self._read_frame(port, command, time.monotonic() + self.timeout)
        except (serial.SerialException, OSError, termios.error) as exc:
            # termios.error (not an OSError): the tty went away under pyserial (USB unplugged)
            link.drop()
            raise CommError(f"{self.url}: {exc}") from exc

    def _read_frame(self, port: Any, command: int, deadline: float) -> protocol.Frame | None:
        """Read exactly one frame: drop bytes until a plausible header (our lead, address and
        command or 0F), then read the n + 1 bytes it announces. FrameError if that is corrupt."""
        splitter = protocol.FrameSplitter(
            self.lead, self.address,
            lambda header: header[3] in (command, protocol.ERROR_REPLY) and header[4] <= _MAX_REPLY_DATA,
        )
        data = b""
        try:
            while True:
                # Asking the port for what completes the frame only: nothing after it is taken.
                frames = splitter.feed(data)
                if frames:
                    return protocol.decode_frame(frames[0], lead=self.lead, address=self.address)
                if time.monotonic() >= deadline:
                    if splitter.buffer:
                        raise FrameError(f"reply cut off after {len(splitter.buffer)} bytes")
                    return None
                data = port.read(splitter.missing())
        finally:
            self.stray_bytes += splitter.stray

    def _describe(self, error: protocol.ErrorReply, command: int) -> str:
        advice = {
            protocol.BAD_COMMAND: f"the {self.family.name} does not know this command "
            "(check the Family property)",
            protocol.BAD_DATA: "the value was rejected",
        }.get(error.kind or "", "")
        return (
            f"chiller at address {self.address} answered error {error.code:02X} "
            f"({error.meaning}) to command {command:02X}" + (f": {advice}" if advice else "")
        )


def _of_length(length: int, decode: Callable[[bytes], _T] = bytes) -> Callable[[bytes], _T]:
    def checked(data: bytes) -> _T:
        if len(data) != length:
            raise FrameError(f"reply with {len(data)} data bytes, expected {length}")
        return decode(data)

    return checked
