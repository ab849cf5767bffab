"""What every instrument simulator is, whatever it simulates.

A simulator is started and stopped (or used as a context manager), is reached at its Urls, and
takes faults one way for the three instruments: the common ones (offline/online, drop, delay,
corrupt) every simulator implements, plus its own ``FAULTS`` table (warning bits, error codes,
lockout, …), all applied by name from a line of text (:meth:`Simulator.fault`), from the command
line at start (``--fault``) or at run time over its control port (``plantds fault``). Their
shared parts live beside this: :mod:`.tcp_server` (TCP serving), :mod:`.serial_line` (byte
pacing at a baud rate), :mod:`.sim_faults` (the fault vocabulary and control port).

Each instrument's simulator module offers ``add_arguments(parser)`` (with
``sim_faults.add_fault_arguments(parser, TheSimulator.faults())``) and ``run(args)`` for
``plantds simulate``; ``run`` builds the simulator and calls :meth:`Simulator.serve`.
"""

from __future__ import annotations

import abc
import argparse
from typing import ClassVar, TypeVar

from . import sim_faults
from .foreground import stop_requested, wait_until_stopped
from .sim_faults import Fault

S = TypeVar("S", bound="Simulator")


class Simulator(abc.ABC):
    """The common life cycle and fault API of the instrument simulators."""

    # The instrument's own faults, beside sim_faults.COMMON: name → Fault(args, help, apply).
    FAULTS: ClassVar[dict[str, Fault]] = {}

    # -- life cycle -------------------------------------------------------------------------
    @abc.abstractmethod
    def start(self: S) -> S:
        """Open the ports and run; returns the simulator, so ``sim = Sim(...).start()`` reads."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Close every port and connection and end every thread it started."""

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    @abc.abstractmethod
    def urls(self) -> list[str]:
        """The plantds Urls a device uses to reach this simulator (after start)."""

    @property
    def url(self) -> str:
        """The Url (or the Urls on one line, for a banner)."""
        return ", ".join(self.urls)

    def banner(self) -> str:
        """What ``plantds simulate`` prints once it runs: the instrument and where it is."""
        return f"{type(self).__name__} at {self.url}"

    # -- the common faults -------------------------------------------------------------------
    @abc.abstractmethod
    def set_online(self, online: bool) -> None:
        """Offline: the instrument stops answering (what happens to connections is its own)."""

    @abc.abstractmethod
    def set_delay(self, seconds: float) -> None:
        """Answer each request this late; beyond a client's timeout it looks like silence."""

    @abc.abstractmethod
    def drop_connections(self) -> None:
        """Cut every client connection; clients reconnect."""

    @abc.abstractmethod
    def corrupt_next(self, count: int = 1) -> None:
        """The next ``count`` replies go out spoiled the way the instrument's link shows it (a
        wrong checksum or CRC, a broken header, a malformed gateway message)."""

    @classmethod
    def faults(cls) -> dict[str, Fault]:
        """Every fault this simulator takes by name: the common ones and its own."""
        return sim_faults.vocabulary(cls.FAULTS)

    def fault(self, line: str) -> str:
        """Apply one fault line (``offline``, ``delay 0.5``, ``warnings 0x4``); the line as
        applied. ValueError says what was wrong (unknown name, bad arguments)."""
        return sim_faults.apply(self, self.faults(), line)

    # -- plantds simulate --------------------------------------------------------------------
    def serve(self, args: argparse.Namespace) -> int:
        """Run until Ctrl-C/SIGTERM: start, print the banner, apply ``--fault`` lines and serve
        ``--control-port`` (:func:`sim_faults.add_fault_arguments`), then stop."""
        stop = stop_requested()
        with self:
            print(self.banner(), flush=True)
            with sim_faults.faults_from_command_line(self, args):
                wait_until_stopped(stop)
        return 0
