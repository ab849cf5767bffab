"""Links: transports opened by URL and shared by every device in the process that names them.

Several chillers on one RS-485 line, or several Modbus slaves behind one gateway, must never
interleave transactions. Every device that names the same port gets the same :class:`Link`, and
holds ``link.lock`` for one whole request/response. The transport itself is opened lazily and
dropped on failure, so whichever device notices a dead port first causes the reopen for all.
"""

from __future__ import annotations

import threading
from typing import Any, Callable
from urllib.parse import urlsplit


class CommError(Exception):
    """The instrument could not be reached: timeout, connection refused or lost, bad framing.

    The worker counts it, marks the link down (State UNKNOWN, values INVALID) and reconnects.
    """


class Link:
    """One physical port (or TCP endpoint) with its lock and its lazily opened transport."""

    def __init__(self, key: str, opener: Callable[[], Any]):
        self.key = key
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


def acquire(key: str, opener: Callable[[], Any]) -> Link:
    """Return the process-wide link for ``key``, creating it with ``opener`` on first use."""
    with _registry_lock:
        link = _registry.get(key)
        if link is None:
            link = _registry[key] = Link(key, opener)
        link._users += 1
        return link


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
