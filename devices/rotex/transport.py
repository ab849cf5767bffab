"""CAN ports opened by Url: python-can buses and ELM327 adapters behind one ``transact``.

| Url | Port |
|---|---|
| ``socketcan://can0`` | python-can SocketCAN (bitrate set outside the server, §1) |
| ``socketcand://host[:29536]/can0`` | python-can client of a socketcand server |
| ``virtual://channel`` | python-can virtual bus (in-process; tests and the simulator) |
| ``elm327:///dev/ttyUSB0[?baudrate=38400]`` | ELM327 on a serial port |
| ``elm327+tcp://host[:35000]`` | ELM327 behind a TCP bridge (WiFi adapters, ser2net) |

Every port offers ``name``, ``close()`` and::

    transact(sender, responder, data, timeout, is_reply, observe) -> bytes | None

one request out, the reply's data back (or None), every other frame heard handed to
``observe`` — so the driver is the same whether the port is a bus it listens to or an adapter
that answers line by line.

Section numbers (§) refer to ``docs/rotex-hpsu-can.md``.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Callable, Iterable, NamedTuple
from urllib.parse import parse_qs, urlsplit

import can
import serial

from ...server.links import CommError, no_delay, serial_target, split_url, tcp_key
from .elm327 import BAUDRATE, Elm327Port

SOCKETCAND_PORT = 29536
# Url schemes python-can opens itself → (its interface name, the protocol Status names).
PYTHON_CAN_INTERFACES = {"socketcan": ("socketcan", "SocketCAN"), "virtual": ("virtual", "virtual CAN")}
ELM327_TCP_PORT = 35000
CONNECT_TIMEOUT_S = 3.0

SCHEMES = ("socketcan", "socketcand", "virtual", "elm327", "elm327+tcp")
URL_FORMS = ("socketcan://<interface>, socketcand://host[:29536]/<interface>, "
             "elm327:///dev/<port>[?baudrate=38400], elm327+tcp://host[:35000] or "
             "virtual://<channel>")


class PortSpec(NamedTuple):
    """What ``server.links.acquire`` needs: the opener, the physical port's key, and the
    settings every user of that port must share."""

    open: Callable[[], Any]
    key: str
    settings: dict[str, Any]


class BusPort:
    """A python-can bus: 11-bit frames only, receive filtered to the HPSU's nodes."""

    def __init__(self, bus: can.BusABC, name: str):
        self._bus = bus
        self.name = name

    def send(self, arbitration_id: int, data: bytes) -> None:
        message = can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=False)
        try:
            self._bus.send(message)
        except (can.CanError, OSError) as exc:
            raise CommError(f"{self.name}: send failed: {exc}") from exc

    def recv(self, timeout: float) -> tuple[int, bytes] | None:
        """The next data frame within ``timeout`` s, or None. Error, remote and 29-bit frames
        never carry an HPSU telegram and are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._bus.recv(max(0.0, deadline - time.monotonic()))
            except (can.CanError, OSError) as exc:
                raise CommError(f"{self.name}: receive failed: {exc}") from exc
            if message is None:
                return None
            if not (message.is_error_frame or message.is_remote_frame or message.is_extended_id):
                return message.arbitration_id, bytes(message.data)

    def transact(
        self,
        sender: int,
        responder: int,
        data: bytes,
        timeout: float,
        is_reply: Callable[[int, bytes], bool],
        observe: Callable[[int, bytes], None],
    ) -> bytes | None:
        """Send ``data`` from ``sender``; wait up to ``timeout`` s for a frame ``is_reply``
        accepts and return its data (None on timeout; ``timeout=0`` just sends).

        Frames queued since the last exchange are observed first, never taken as the reply: a
        reply only counts if it was heard after the request went out.
        """
        while (frame := self.recv(0.0)) is not None:
            observe(*frame)
        self.send(sender, data)
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            frame = self.recv(remaining)
            if frame is None:
                break
            if is_reply(*frame):
                return frame[1]
            observe(*frame)
        return None

    @property
    def malformed(self) -> int:
        """Messages from the port that could not be parsed and were skipped."""
        return getattr(self._bus, "malformed", 0)

    def close(self) -> None:
        self._bus.shutdown()


def _filters(responders: Iterable[int]) -> list[dict]:
    # Only the HPSU's nodes send what we read: our replies and, passively, their replies to the
    # RoCon display. Requests from the display or other clients are filtered out early.
    return [{"can_id": node, "can_mask": 0x7FF, "extended": False}
            for node in sorted(set(responders))]


class SocketcandBus:
    """Client of a socketcand server in raw mode, with python-can's ``send``/``recv``/
    ``shutdown`` as far as :class:`BusPort` uses them.

    Our own rather than python-can's: there one malformed ``< frame … >`` message raises out
    of ``recv`` and stays in its buffer, so every later receive fails and the link is lost
    for good. Here a message that does not parse (or bytes outside ``< >``) is skipped and
    counted in :attr:`malformed`; only a lost connection is a communication error.
    """

    MAX_MESSAGE = 200  # an unterminated message longer than this is noise

    def __init__(self, host: str, port: int, channel: str, accept: Iterable[int]):
        self.malformed = 0
        self._accept = frozenset(accept)
        self._buffer = b""
        self._frames: list[tuple[int, bytes]] = []
        self._socket = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        try:
            no_delay(self._socket)  # request/response: no Nagle stall (~40 ms a write)
            self._handshake("< hi >", None)
            self._handshake("< ok >", f"< open {channel} >")
            self._handshake("< ok >", "< rawmode >")
        except BaseException:
            self._socket.close()
            raise

    def _handshake(self, expected: str, request: str | None) -> None:
        if request is not None:
            self._socket.sendall(request.encode("ascii"))
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            message = self._next_message(max(0.0, deadline - time.monotonic()))
            if message is None:
                raise CommError(f"socketcand: no {expected!r} after {request or 'connecting'}")
            if message == expected:
                return
            if message.startswith("< error"):
                raise CommError(f"socketcand answered {message!r} to {request}")
            # frames may already flow after "< ok >" of rawmode: keep them
            self._parse_frame(message)

    def send(self, message: can.Message) -> None:
        data = " ".join(f"{byte:02X}" for byte in message.data)
        text = f"< send {message.arbitration_id:03X} {len(message.data)} {data} >"
        try:
            self._socket.sendall(text.encode("ascii"))
        except OSError as exc:
            raise can.CanError(f"socketcand send failed: {exc}") from exc

    def recv(self, timeout: float) -> can.Message | None:
        deadline = time.monotonic() + timeout
        while not self._frames:
            message = self._next_message(max(0.0, deadline - time.monotonic()))
            if message is None:
                return None
            self._parse_frame(message)
        arbitration_id, data = self._frames.pop(0)
        return can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=False)

    def _parse_frame(self, message: str) -> None:
        """``< frame 180 1700000000.123456 3100FA01D60000 >`` → queued if from a node we
        listen to; anything else that is not an error message counts as malformed."""
        words = message[1:-1].split()
        if words[:1] == ["error"]:
            return  # a bus error report: no telegram in it
        try:
            if words[0] != "frame" or len(words) not in (3, 4) or len(words[1]) != 3:
                raise ValueError(message)
            arbitration_id = int(words[1], 16)
            float(words[2])
            data = bytes.fromhex(words[3]) if len(words) == 4 else b""
            if arbitration_id > 0x7FF or len(data) > 8:
                raise ValueError(message)
        except (ValueError, IndexError):
            self.malformed += 1
            return
        if arbitration_id in self._accept:
            self._frames.append((arbitration_id, data))

    def _next_message(self, timeout: float) -> str | None:
        """The next ``< … >`` message as text, or None after ``timeout`` s of silence."""
        deadline = time.monotonic() + timeout
        while True:
            start = self._buffer.find(b"<")
            if start > 0 or (start < 0 and self._buffer):
                self.malformed += 1  # bytes outside a message
                self._buffer = self._buffer[start:] if start > 0 else b""
            end = self._buffer.find(b">")
            if start >= 0 and end > 0:
                raw, self._buffer = self._buffer[: end + 1], self._buffer[end + 1 :]
                if b"<" in raw[1:]:  # a message cut short by the next one
                    self.malformed += 1
                    self._buffer = raw[raw.rindex(b"<"):] + self._buffer
                    continue
                try:
                    return raw.decode("ascii")
                except UnicodeDecodeError:
                    self.malformed += 1
                    continue
            if len(self._buffer) > self.MAX_MESSAGE:
                self.malformed += 1
                self._buffer = b""
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._socket.settimeout(remaining)
            try:
                chunk = self._socket.recv(4096)
            except socket.timeout:
                return None
            except OSError as exc:
                raise can.CanError(f"socketcand receive failed: {exc}") from exc
            if not chunk:
                raise can.CanError("socketcand closed the connection")
            self._buffer += chunk

    def shutdown(self) -> None:
        self._socket.close()


def opener(url: str, responders: Iterable[int]) -> PortSpec:
    """Check ``url`` now (ValueError naming the accepted forms) and return how to open the
    port and under which key it is shared (``elm327:///dev/ttyUSB0`` and the same with
    ``?baudrate=38400`` are one port; host names compare case-insensitively)."""
    scheme, host, port, path = split_url(url)
    parts = urlsplit(url)
    nodes = sorted(set(responders))
    filters = _filters(nodes)
    if parts.fragment or (parts.query and scheme != "elm327"):
        raise ValueError(f"Url {url!r}: no options expected (expected {URL_FORMS})")

    if scheme in PYTHON_CAN_INTERFACES:
        # A bus python-can opens itself: a kernel interface, or a test bus in this process.
        channel = parts.netloc or path.lstrip("/")
        if not channel:
            raise ValueError(f"Url {url!r}: expected {scheme}://<channel>, e.g. {scheme}://can0")
        interface, protocol = PYTHON_CAN_INTERFACES[scheme]
        return PortSpec(
            lambda: BusPort(
                can.Bus(interface=interface, channel=channel, can_filters=filters,
                        receive_own_messages=False),
                url,
            ),
            f"{scheme}://{channel}",
            {"protocol": protocol},
        )

    if scheme == "socketcand":
        channel = path.strip("/") or "can0"
        if not host:
            raise ValueError(f"Url {url!r}: expected socketcand://host[:port]/<interface>")
        port = port or SOCKETCAND_PORT

        def open_socketcand() -> BusPort:
            return BusPort(SocketcandBus(host, port, channel, nodes), url)

        return PortSpec(open_socketcand, f"{tcp_key(host, port)}/{channel}",
                        {"protocol": "socketcand"})

    if scheme == "elm327":
        if host:
            raise ValueError(f"Url {url!r}: expected elm327:///dev/<port>[?baudrate=38400]")
        device, key = serial_target(path, url, URL_FORMS)
        query = parse_qs(parts.query, keep_blank_values=True)
        if set(query) - {"baudrate"} or len(query.get("baudrate", [])) > 1:
            raise ValueError(f"Url {url!r}: the only option is ?baudrate=<integer>")
        try:
            baudrate = int(query.get("baudrate", [BAUDRATE])[0])
        except ValueError:
            raise ValueError(f"Url {url!r}: baudrate must be an integer") from None
        if baudrate <= 0:
            raise ValueError(f"Url {url!r}: baudrate must be positive")
        # exclusive: another program on the adapter would answer prompts meant for us.
        return PortSpec(
            lambda: Elm327Port(serial.Serial(device, baudrate=baudrate, exclusive=True), url),
            key,
            {"protocol": "ELM327", "baudrate": baudrate},
        )

    if scheme == "elm327+tcp":
        if not host:
            raise ValueError(f"Url {url!r}: expected elm327+tcp://host[:35000]")
        if path not in ("", "/"):
            raise ValueError(f"Url {url!r}: expected elm327+tcp://host[:35000]")
        port = port or ELM327_TCP_PORT
        def open_elm327_tcp() -> Elm327Port:
            bridge = serial.serial_for_url(f"socket://{host}:{port}")
            no_delay(bridge._socket)  # pyserial's socket:// leaves Nagle on
            return Elm327Port(bridge, url)

        return PortSpec(open_elm327_tcp, tcp_key(host, port), {"protocol": "ELM327"})

    raise ValueError(f"Url {url!r}: unknown scheme {scheme!r}; expected {URL_FORMS}")
