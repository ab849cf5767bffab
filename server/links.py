"""Links: transports opened by URL and shared by every device in the process that names them.

Several chillers on one RS-485 line, or several Modbus slaves behind one gateway, must never
interleave transactions. Every device that names the same port gets the same :class:`Link`, and
holds ``link.lock`` for one whole request/response. The transport itself is opened lazily and
dropped on failure, so whichever device notices a dead port first causes the reopen for all.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable
from urllib.parse import urlsplit


class CommError(Exception):
    """The instrument could not be reached: timeout, connection refused or lost, bad framing.

    The worker counts it, marks the link down (State UNKNOWN, values INVALID) and reconnects.
    """


class Link:
    """One physical port (or TCP endpoint) with its lock and its lazily opened transport."""

    def __init__(self, key: str, opener: Callable[[], Any], settings: Any = None):
        self.key = key
        self.settings = settings
        self._opener = opener
        self._transport: Any = None
        self._users = 0
        # Re-entrant so a driver can hold the lock across a transaction that itself opens.
        self.lock = threading.RLock()

    def transport(self) -> Any:
        """The open transport, opening it first if needed (call with ``lock`` held)."""
        if self._transport is None:
            try:
                self._transport = self._opener()
            except CommError:
                raise
            except Exception as exc:  # any opener failure is a reachability problem
                raise CommError(f"cannot open {self.key}: {exc}") from exc
        return self._transport

    @property
    def is_open(self) -> bool:
        return self._transport is not None

    def drop(self) -> None:
        """Close the transport after a failure; the next transaction reopens it."""
        with self.lock:
            transport, self._transport = self._transport, None
            if transport is not None:
                try:
                    transport.close()
                except Exception:  # a broken transport may fail to close; it is gone anyway
                    pass


_registry: dict[str, Link] = {}
_registry_lock = threading.Lock()


def acquire(key: str, opener: Callable[[], Any], settings: Any = None) -> Link:
    """Return the process-wide link for ``key``, creating it with ``opener`` on first use.

    ``key`` is the normalised physical port (see :func:`serial_target`, :func:`tcp_key`);
    ``settings`` what the port is opened with (protocol and line settings). Every user of one
    port must ask for the same: a second device that wants another baud rate or protocol on it
    is a configuration error (:class:`~plantds.server.errors.PortConflict`), never a second open.
    """
    from .errors import PortConflict  # errors.py imports CommError from here

    with _registry_lock:
        link = _registry.get(key)
        if link is None:
            link = _registry[key] = Link(key, opener, settings)
        elif link.settings != settings:
            raise PortConflict(
                f"port {key} is already open with {_describe(link.settings)}; this device asks "
                f"for {_describe(settings)}: give every device on one port the same line settings"
            )
        link._users += 1
        return link


def _describe(settings: Any) -> str:
    if isinstance(settings, dict):
        return ", ".join(f"{name} {value}" for name, value in settings.items())
    return str(settings)


def release(link: Link) -> None:
    """Give up one use of ``link``; the last user closes it."""
    with _registry_lock:
        link._users -= 1
        if link._users > 0:
            return
        _registry.pop(link.key, None)
    link.drop()


def split_url(url: str, default_port: int | None = None) -> tuple[str, str, int | None, str]:
    """``scheme://host:port/path`` → (scheme, host, port, path); clear error on a malformed URL."""
    parts = urlsplit(url)
    if not parts.scheme:
        raise ValueError(f"Url {url!r} has no scheme (expected e.g. tcp://host:502)")
    try:
        port = parts.port if parts.port is not None else default_port
    except ValueError as exc:
        raise ValueError(f"Url {url!r} has an invalid port: {exc}") from None
    return parts.scheme.lower(), parts.hostname or "", port, parts.path


def no_delay(sock: Any) -> None:
    """Send small request frames at once: without TCP_NODELAY, Nagle's algorithm holds a request
    written right behind another (a heat pump read-back behind its write) until the peer's
    delayed ACK, ~40 ms a transaction on request/response links."""
    import socket

    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def tcp_key(host: str, port: int) -> str:
    """Link key of a TCP endpoint: host names are case-insensitive."""
    return f"tcp://{host.lower()}:{port}"


SERIAL_FORMS = "/dev/<port>, socket://host:port or rfc2217://host:port"


def serial_target(target: str, url: str, forms: str = SERIAL_FORMS) -> tuple[str, str]:
    """Check what a ``Url`` hands to pyserial; returns (target for pyserial, link key).

    pyserial opens far more than ports: ``spy://`` and ``loop://`` with ``?logfile=`` create or
    empty any file, ``hwgrep://`` opens whatever matches, a plain path opens any file. Only a
    local device under /dev and the two network forms are accepted (ValueError naming the
    accepted forms otherwise). The key is the physical port: symlinks such as
    /dev/serial/by-id/… resolve to the tty they name, host names compare case-insensitively.
    """
    refuse = f"Url {url!r}: expected {forms}"
    if target.startswith("/"):
        path = os.path.normpath(target)
        if not path.startswith("/dev/") or "?" in target or "#" in target:
            raise ValueError(f"{refuse}; a serial port is a device under /dev")
        if os.path.isfile(path):
            raise ValueError(f"{refuse}; {path} is a regular file, not a serial port")
        return path, "serial://" + os.path.realpath(path)
    parts = urlsplit(target)
    if parts.scheme.lower() not in ("socket", "rfc2217"):
        raise ValueError(refuse)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.path not in ("", "/") or parts.query \
            or parts.fragment:
        raise ValueError(f"{refuse} (host and port, no path or options)")
    return f"{parts.scheme.lower()}://{parts.hostname}:{port}", tcp_key(parts.hostname, port)
