"""Faults in a running simulator without writing Python: one fault vocabulary for the three
instruments, given at start (``plantds simulate … --fault "delay 0.5"``) or at run time over the
simulator's loopback control port (``--control-port N``), which ``plantds fault 127.0.0.1:N
offline`` drives. One line per fault, one line back (``ok: …`` or ``error: …``).

Every simulator offers the common faults (offline/online, drop, delay, corrupt); each instrument
adds its own (warning and alarm bits, error codes, …) as a table in its simulator class.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import socket
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .tcp_server import TcpServer

CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Fault:
    args: str  # the arguments as the help shows them, e.g. "SECONDS" or "[COUNT]"
    help: str
    apply: Callable[..., Any]  # apply(simulator, *words)


COMMON = {
    "offline": Fault("", "the instrument stops answering (connections stay up)", lambda sim: sim.set_online(False)),
    "online": Fault("", "it answers again", lambda sim: sim.set_online(True)),
    "drop": Fault("", "cut every client connection (clients reconnect)", lambda sim: sim.drop_connections()),
    "delay": Fault("SECONDS", "answer each request this late (0: at once)", lambda sim, s: sim.set_delay(float(s))),
    "corrupt": Fault("[COUNT]", "the next reply(s) fail their check: checksum or CRC, Modbus TCP header, "
                     "a malformed gateway message", lambda sim, n="1": sim.corrupt_next(int(n))),
}


def vocabulary(own: dict[str, Fault]) -> dict[str, Fault]:
    return {**COMMON, **own}


def describe(faults: dict[str, Fault]) -> str:
    return "\n".join(f"  {f'{name} {fault.args}'.strip():<28} {fault.help}" for name, fault in faults.items())


def apply(sim: Any, faults: dict[str, Fault], line: str) -> str:
    """Apply one fault line to ``sim``; the confirmation. ValueError says what was wrong."""
    words = shlex.split(line)
    if not words:
        raise ValueError("empty fault line")
    name, args = words[0], words[1:]
    fault = faults.get(name)
    if fault is None:
        raise ValueError(f"unknown fault {name!r}; this simulator knows: {', '.join(faults)}")
    try:
        fault.apply(sim, *args)
    except TypeError:
        raise ValueError(f"usage: {name} {fault.args}".strip()) from None
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{name}: {exc}") from None
    return shlex.join(words)


class ControlServer:
    """The simulator's control port: loopback TCP, one fault line in, one line out."""

    def __init__(self, sim: Any, port: int, host: str = "127.0.0.1"):
        self._sim = sim  # a server.simulator.Simulator
        self._server = TcpServer(host, port, self._serve, "sim-control")

    @property
    def address(self) -> str:
        return f"{self._server.host}:{self._server.port}"

    def close(self) -> None:
        self._server.close()

    def _serve(self, conn: socket.socket) -> None:
        with conn.makefile("rw", encoding="utf-8", newline="\n") as stream:
            for line in stream:
                line = line.strip()
                if line == "help":
                    reply = "ok: faults:\n" + describe(self._sim.faults()).replace("\n", " |")
                else:
                    try:
                        reply = f"ok: {self._sim.fault(line)}"
                    except ValueError as exc:
                        reply = f"error: {exc}"
                stream.write(reply.replace("\n", " ") + "\n")
                stream.flush()


# -- the simulator's command line -------------------------------------------------------------
def add_fault_arguments(parser: argparse.ArgumentParser, faults: dict[str, Fault]) -> None:
    parser.add_argument(
        "--fault", action="append", default=[], metavar="'NAME [ARGS]'",
        help="apply this fault at start (repeatable); faults: " + ", ".join(
            f"{name} {fault.args}".strip() for name, fault in faults.items()),
    )
    parser.add_argument(
        "--control-port", type=int, default=None, metavar="N",
        help="take faults at run time on 127.0.0.1:N (0: any free port): plantds fault 127.0.0.1:N 'NAME [ARGS]'",
    )


@contextlib.contextmanager
def faults_from_command_line(sim: Any, args: argparse.Namespace) -> Iterator[None]:
    """Apply ``--fault`` lines to the started ``sim`` and serve ``--control-port`` while it runs.
    A bad fault line is a ValueError (one line for the operator)."""
    for line in args.fault:
        print(f"Fault applied: {sim.fault(line)}", flush=True)
    if args.control_port is None:
        yield
        return
    control = ControlServer(sim, args.control_port)
    print(f"Fault control at {control.address}: plantds fault {control.address} 'NAME [ARGS]' "
          f"(faults: {', '.join(sim.faults())})", flush=True)
    try:
        yield
    finally:
        control.close()


# -- plantds fault ------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Send faults to a simulator's control port (plantds simulate … --control-port N)."
    parser.add_argument("address", metavar="HOST:PORT", help="the simulator's control port, e.g. 127.0.0.1:15030")
    parser.add_argument("faults", nargs="+", metavar="'NAME [ARGS]'",
                        help="one fault per argument, e.g. offline, 'delay 0.8', 'warnings 0x4'; help lists them")


def send(address: str, lines: list[str]) -> list[str]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{address!r} is not HOST:PORT")
    with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S) as conn, \
            conn.makefile("rw", encoding="utf-8", newline="\n") as stream:
        replies = []
        for line in lines:
            stream.write(line.replace("\n", " ") + "\n")
            stream.flush()
            replies.append(stream.readline().strip() or "error: the simulator closed the connection")
        return replies


def run(args: argparse.Namespace) -> int:
    try:
        replies = send(args.address, args.faults)
    except OSError as exc:
        raise OSError(f"no simulator control port at {args.address} ({exc.strerror or exc}); "
                      "start the simulator with --control-port") from None
    failed = False
    for reply in replies:
        failed |= reply.startswith("error:")
        print(reply.replace(" |", "\n"), file=sys.stderr if reply.startswith("error:") else sys.stdout)
    return 1 if failed else 0
