"""ELM327 adapter driver: AT set-up for the HPSU bus and prompt-driven request/response.

The adapter is a command interpreter on a serial line: every command is a text line ending in
CR, and the adapter prints its reply lines followed by a ``>`` prompt. A hex payload line makes
it transmit one CAN frame and print every frame it receives (through its ``AT CRA`` filter)
until its own reply window closes, or until it has shown the response count the line ends with,
then the prompt (docs/rotex-hpsu-can.md §7.3). So one exchange is: write a line, read to
the prompt — never a fixed sleep, and never a second command before the prompt (pyHPSU's bug #7
in docs/rotex-hpsu-can.md §6.2: an unread reply poisons the next exchange).

The pure helpers (:func:`reply_lines`, :func:`parse_frame`, :func:`check_reply`) hold the
adapter's text conventions; :class:`Elm327` does the I/O over any pyserial object; and
:class:`Elm327Port` is the transport the HPSU driver sees (same ``transact`` as the python-can
ports in ``transport.py``).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Callable

from ...server.links import CommError

BAUDRATE = 38400  # USB ELM327 factory default (8N1)
PROMPT = b">"

RESET_TIMEOUT_S = 5.0  # ATZ restarts the adapter's firmware and prints its banner
COMMAND_TIMEOUT_S = 2.0
# The adapter closes each CAN exchange itself (its AT ST reply window, at most ~1 s); this
# margin only detects an adapter that stopped talking altogether.
PROMPT_MARGIN_S = 1.0
# A reply window that never closes (frames from the filtered node keep arriving within the
# adapter's timeout on a very busy bus) is given up after this long.
MAX_EXCHANGE_S = 10.0
READ_SLICE_S = 0.05  # serial read granularity; a read returns as soon as a byte arrives
# Reads sent with a response count before one that listens through the whole reply window: on
# a bus where other stations keep the node busy, a window stays open as long as the node keeps
# answering them (0.6 s measured beside a second client refreshing the same node).
COUNTED_ATTEMPTS = 3

# Set-up (docs/rotex-hpsu-can.md §7): the bitrate lives in programmable parameter 2F as a divisor of
# 500 kbit/s (0x19 = 25 → 20 kbit/s) for protocol C; PPs only take effect after a reset.
CONFIGURE_BITRATE = ("AT PP 2F SV 19", "AT PP 2F ON", "AT SP C")
# After the reset: no echo; variable DLC so a 7-byte payload goes out as DLC 7; headers on so
# every received line carries the sender id needed for strict matching; CAN auto-formatting
# off so the adapter neither prepends an ISO 15765 length byte to what we send nor interprets
# the first byte of what it receives.
SESSION_SETTINGS = ("ATE0", "AT V1", "AT H1", "AT CAF0")

NO_DATA = "NO DATA"
# The adapter could not get a frame onto the bus or hears a broken bus: nothing will work
# until the wiring or bitrate is fixed, so these fail the link, not just one request.
BUS_FAILURES = ("CAN ERROR", "BUS ERROR", "BUS BUSY", "FB ERROR", "LV RESET", "UNABLE TO CONNECT")
# One exchange went wrong (overrun, a corrupt frame, interrupted); the request can be retried.
TRANSIENT_FAILURES = ("BUFFER FULL", "DATA ERROR", "RX ERROR", "STOPPED")

NO_PP_MESSAGE = (
    "this ELM327 clone does not support programmable parameters (AT PP); it cannot be set to "
    "20 kbit/s — use a genuine ELM327/OBDLink or a SocketCAN adapter"
)

_HEX = re.compile(r"[0-9A-Fa-f]+")

log = logging.getLogger(__name__)


class ElmError(CommError):
    """The adapter answered something that makes the bus unusable (or stopped answering)."""


class ElmUnsupported(ElmError):
    """The adapter lacks a feature the HPSU bus needs (a clone without ``AT PP``)."""


def _compact(text: str) -> str:
    return text.replace(" ", "").upper()


def reply_lines(raw: bytes, sent: str) -> list[str]:
    """What the adapter printed before its prompt, one stripped line each.

    Blank lines and the echo of ``sent`` are dropped. Some clones echo without a line break
    (``AT PP 2F ONOK``, docs/rotex-hpsu-can.md §7.4), so an echo glued to the reply is cut off too.
    """
    text = raw.decode("ascii", "replace")
    if text.endswith(">"):
        text = text[:-1]
    lines = [line.strip() for line in re.split(r"[\r\n]+", text)]
    lines = [line for line in lines if line]
    sent_compact = _compact(sent)
    if lines and sent_compact and _compact(lines[0]).startswith(sent_compact):
        rest = lines[0].replace(" ", "")[len(sent_compact):].strip()
        lines = ([rest] if rest else []) + lines[1:]
    return lines


def parse_frame(line: str) -> tuple[int, bytes] | None:
    """A received-frame line with headers on (``180 D2 00 FA 01 D6 01 0C``) → (id, data).

    Accepts the compact form printed with ``AT S0`` too. Anything else (status texts, a line
    spoiled by ``<RX ERROR``, a 29-bit header) is not a frame and gives None.
    """
    tokens = line.split()
    if len(tokens) > 1:
        if len(tokens[0]) != 3 or any(len(token) != 2 for token in tokens[1:]):
            return None
        compact = "".join(tokens)
    else:
        compact = line.strip()
    if len(compact) < 3 or len(compact) % 2 == 0 or not _HEX.fullmatch(compact):
        return None
    arbitration_id = int(compact[:3], 16)
    if arbitration_id > 0x7FF:  # three hex digits, but not an 11-bit id
        return None
    return arbitration_id, bytes.fromhex(compact[3:])


def check_reply(lines: list[str], sent: str) -> None:
    """Raise :class:`ElmError` when the reply says the bus (or the request) is unusable."""
    for line in lines:
        upper = line.upper()
        if any(upper.startswith(failure) for failure in BUS_FAILURES):
            raise ElmError(
                f"ELM327 reports {line!r} after {sent!r}: no node acknowledged the frame — "
                "check the CAN wiring and the 20 kbit/s setting"
            )
        if line == "?":
            raise ElmError(f"ELM327 did not understand {sent!r} ('?')")


def is_transient_failure(line: str) -> bool:
    return any(marker in line.upper() for marker in TRANSIENT_FAILURES)


def payload_line(data: bytes, responses: int | None = None) -> str:
    """The hex text that makes the adapter transmit ``data`` (with CAN auto-formatting off).

    ``responses`` (1-15) is the ELM327's response count (v1.3 and later): one hex digit after
    the data bytes, and the adapter ends its reply window, printing the prompt, as soon as it
    has shown that many frames instead of waiting out its AT ST timer after the last one.
    """
    text = data.hex(" ").upper()
    if responses is None:
        return text
    if not 1 <= responses <= 15:
        raise ValueError(f"response count {responses} is not one hex digit 1-F")
    return f"{text} {responses:X}"


# The adapter's side of the same text (the simulator's ELM327 emulation), next to the client's
# so both read and write it one way: payload_line → payload_from_line, frame_line → parse_frame.
def payload_from_line(command: str) -> tuple[bytes, int | None] | None:
    """The bytes a typed payload line asks the adapter to send (spaces ignored, 1-8 bytes of
    hex) and its response count (a last odd hex digit 1-F, else None); None for anything else
    (the adapter answers '?')."""
    match = re.fullmatch(r"((?:[0-9A-F]{2}){1,8})([1-9A-F])?", _compact(command))
    if match is None:
        return None
    return bytes.fromhex(match[1]), int(match[2], 16) if match[2] else None


def frame_line(arbitration_id: int, data: bytes, headers: bool = True, spaces: bool = True) -> str:
    """How the adapter prints a received frame: with headers (AT H1) the 3-digit id first;
    with spaces (AT S1) a space between fields."""
    fields = ([f"{arbitration_id:03X}"] if headers else []) + [f"{b:02X}" for b in data]
    return (" " if spaces else "").join(fields)


class Elm327:
    """Prompt-driven command I/O with one adapter over a pyserial object."""

    def __init__(self, serial, name: str):
        self._serial = serial
        self.name = name
        serial.timeout = READ_SLICE_S

    def command(self, text: str, timeout: float = COMMAND_TIMEOUT_S) -> list[str]:
        """Send one command line, read to the prompt, return the reply lines (echo removed)."""
        try:
            self._serial.reset_input_buffer()
            self._serial.write(text.encode("ascii") + b"\r")
            raw = self._read_to_prompt(text, timeout)
        except ElmError:
            raise
        except Exception as exc:  # pyserial raises SerialException/OSError on a lost port
            raise ElmError(f"{self.name}: {exc}") from exc
        return reply_lines(raw, text)

    def _read_to_prompt(self, sent: str, timeout: float) -> bytes:
        buffer = bytearray()
        # The deadline restarts with every byte: the adapter may legitimately keep printing
        # frames for a while on a busy bus, but an adapter that goes silent without a prompt
        # is gone.
        start = time.monotonic()
        deadline = start + timeout
        while PROMPT not in buffer:
            now = time.monotonic()
            if now > deadline:
                raise ElmError(f"{self.name}: no '>' prompt within {timeout:g} s after {sent!r}")
            if now - start > MAX_EXCHANGE_S:
                raise ElmError(
                    f"{self.name}: the adapter kept printing frames for {MAX_EXCHANGE_S:g} s "
                    f"after {sent!r}; the bus is too busy for its reply window"
                )
            chunk = self._serial.read(max(1, self._serial.in_waiting))
            if chunk:
                buffer += chunk
                deadline = time.monotonic() + timeout
        return bytes(buffer[: buffer.index(PROMPT) + 1])

    def expect_ok(self, text: str) -> None:
        lines = self.command(text)
        if lines != ["OK"]:
            raise ElmError(f"{self.name}: {text!r} answered {lines!r}, expected 'OK'")

    def initialise(self) -> None:
        """Reset, set 20 kbit/s on protocol C, reset again so it applies, session settings."""
        self.command("ATZ", RESET_TIMEOUT_S)
        self.expect_ok("ATE0")
        for text in CONFIGURE_BITRATE:
            lines = self.command(text)
            if lines == ["?"] and text.startswith("AT PP"):
                raise ElmUnsupported(f"{self.name}: {NO_PP_MESSAGE}")
            if lines != ["OK"]:
                raise ElmError(f"{self.name}: {text!r} answered {lines!r}, expected 'OK'")
        self.command("ATZ", RESET_TIMEOUT_S)
        for text in SESSION_SETTINGS:
            self.expect_ok(text)

    def close(self) -> None:
        self._serial.close()


class Elm327Port:
    """An ELM327 as a CAN port: one frame out, the frames heard until the prompt back.

    A read ends at its reply, not at the adapter's reply window: the payload line carries the
    response count 1, so the adapter shows the first frame through its ``AT CRA`` filter and
    prompts at once (on the HPSU bus that saves the AT ST wait, 200 ms by default, on every
    exchange). The filter passes every frame of the node, so when that first frame is the
    node's reply to someone else, the read is sent again with a count one more than the frames
    that came ahead of the reply, and after ``COUNTED_ATTEMPTS`` such tries without a count:
    the adapter then shows everything until its window closes. A write expects no reply: it
    goes out with responses off (``AT R0``), so the adapter prompts as soon as the frame is on
    the bus. An adapter that answers ``?`` to either (a clone older than v1.3) is used without
    it from then on.
    """

    def __init__(self, serial, name: str):
        self.name = name
        self.malformed = 0  # received lines that were neither a frame nor a known status
        self._elm = Elm327(serial, name)
        self._header: int | None = None
        self._receive_filter: int | None = None
        self._responses = True  # the adapter's AT R setting (on after every reset)
        self._counts = True  # the adapter takes a response count on a payload line
        self._responses_off = True  # the adapter knows AT R0
        try:
            self._elm.initialise()
        except BaseException:
            self._elm.close()
            raise

    def transact(
        self,
        sender: int,
        responder: int,
        data: bytes,
        timeout: float,
        is_reply: Callable[[int, bytes], bool],
        observe: Callable[[int, bytes], None],
    ) -> bytes | None:
        """Send ``data`` from ``sender``; return the data of the first frame ``is_reply``
        accepts, or None (``timeout=0`` just sends). Every other frame heard is handed to
        ``observe``.

        The adapter only shows frames from ``responder`` (``AT CRA``) and only while it waits
        after its own transmission, so there is nothing stale to drain here.
        """
        if sender != self._header:
            self._elm.expect_ok(f"AT SH {sender:03X}")
            self._header = sender
        if responder != self._receive_filter:
            self._elm.expect_ok(f"AT CRA {responder:03X}")
            self._receive_filter = responder
        if timeout <= 0:
            if self._responses_off:
                self._set_responses(False)
            self._exchange(payload_line(data), timeout, observe, is_reply)
            return None
        self._set_responses(True)
        count = 1
        for _ in range(COUNTED_ATTEMPTS):
            if not self._counts:  # this adapter refused a count (possibly just now)
                break
            reply, shown = self._exchange(payload_line(data, count), timeout, observe, is_reply)
            if reply is not None or not shown:
                return reply
            # The node's first frames were its replies to other stations: ask again (a read
            # changes nothing), letting as many frames go ahead of ours as came this time.
            count = min(15, shown + 1)
        return self._exchange(payload_line(data), timeout, observe, is_reply)[0]

    def _set_responses(self, on: bool) -> None:
        if on == self._responses:
            return
        text = "AT R1" if on else "AT R0"
        lines = self._elm.command(text)
        if lines == ["?"] and not on:
            log.info("%s: the adapter does not know AT R0; writes wait out its reply window", self.name)
            self._responses_off = False
            return
        if lines != ["OK"]:
            raise ElmError(f"{self.name}: {text!r} answered {lines!r}, expected 'OK'")
        self._responses = on

    def _exchange(
        self, text: str, timeout: float, observe: Callable[[int, bytes], None],
        is_reply: Callable[[int, bytes], bool],
    ) -> tuple[bytes | None, int]:
        """One payload line to the prompt: the reply's data (or None) and the frames shown."""
        lines = self._elm.command(text, timeout + PROMPT_MARGIN_S)
        if lines == ["?"] and self._counts and len(_compact(text)) % 2:
            log.info("%s: the adapter does not take a response count; every read waits out "
                     "its reply window", self.name)
            self._counts = False
            text = _compact(text)[:-1]
            lines = self._elm.command(text, timeout + PROMPT_MARGIN_S)
        check_reply(lines, text)
        reply, shown = None, 0
        for line in lines:
            frame = parse_frame(line)
            if frame is None:
                if is_transient_failure(line):  # this attempt is lost; the driver retries
                    log.info("%s: adapter reported %r after %r", self.name, line, text)
                elif line.upper() != NO_DATA:  # a garbled line: skipped, never the link's end
                    self.malformed += 1
                    log.debug("%s: skipped malformed line %r", self.name, line)
                continue
            shown += 1
            if reply is None and is_reply(*frame):
                reply = frame[1]
            else:
                observe(*frame)
        return reply, shown

    def close(self) -> None:
        self._elm.close()
