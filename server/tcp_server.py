"""The simulators' TCP serving (the chiller's terminal server, the heat pump's socketcand and
ELM327 gateways, every simulator's fault control port): a listening socket on loopback with one
thread per connection, connections that can be cut at will (a fault), and nothing kept of a
client once it has gone. The compressor's Modbus server is pymodbus's own."""

from __future__ import annotations

import socket
import threading
from typing import Callable


class TcpServer:
    """Listen on ``host:port`` (0: any free port); run ``handle(conn)`` in a thread per client.
    The connection is closed and forgotten when ``handle`` returns or the client goes."""

    def __init__(self, host: str, port: int, handle: Callable[[socket.socket], None], name: str):
        self._listener = socket.create_server((host, port))
        self.host = host
        self.port = self._listener.getsockname()[1]
        self._handle = handle
        self._name = name
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name=f"{name}-accept", daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        """Clients connected now."""
        with self._lock:
            return len(self._conns)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # listener shut down
                return
            # Request/response traffic: Nagle would hold each reply for the client's delayed ACK.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name=f"{self._name}-client", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._handle(conn)
        except OSError:  # the client went away or the connection was dropped
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def drop_connections(self) -> None:
        """Cut every client (a gateway restarting); clients reconnect."""
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes the handler's recv; it then closes
            except OSError:
                pass

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        except OSError:
            pass
        self._listener.close()
        self.drop_connections()
        self._thread.join(2.0)
