"""The I/O worker: the only thread that talks to an instrument.

One worker per device runs the refresh cycle every ``RefreshPeriod``, executes queued writes
between cycles through the same driver (so the bus never sees two transactions at once),
reconnects with capped exponential backoff, and publishes an immutable :class:`Snapshot`.
Tango attribute reads only ever look at the snapshot; they never touch the wire.

A driver is any object with::

    connect() -> None            # open/verify the link; raise CommError if unreachable
    close() -> None              # release the link
    refresh() -> dict[str, Any]  # one acquisition cycle; None as a value means "invalid"

Jobs submitted with :meth:`IOWorker.submit` receive the driver and run on this thread.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .links import CommError

log = logging.getLogger(__name__)


class Comm(enum.Enum):
    """Communication state, kept apart from the instrument's own state (SKA style)."""

    CONNECTING = "connecting"  # first attempt after start or Init: Tango INIT
    CONNECTED = "connected"
    LOST = "lost"  # was reachable or never became reachable: Tango UNKNOWN


@dataclass(frozen=True)
class Snapshot:
    """Values of one refresh cycle, all from the same instant."""

    values: Mapping[str, Any] = field(default_factory=dict)
    time: float = 0.0  # epoch seconds of acquisition; 0 = never acquired


class IOWorker:
    """Refresh cycle, write queue, reconnect and snapshot for one device."""

    BACKOFF_START_S = 0.5
    BACKOFF_MAX_S = 10.0

    def __init__(
        self,
        name: str,
        driver: Any,
        refresh_period_s: float,
    ):
        self.name = name
        self.driver = driver
        self.refresh_period_s = max(0.01, refresh_period_s)
        self._jobs: queue.SimpleQueue[tuple[Callable[[Any], Any], Future]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"io-{name}", daemon=True)

        self._cycle_start: float | None = None  # monotonic start of the running cycle
        self._last_cycle_s = 0.0
        self.comm = Comm.CONNECTING
        self.reason = "connecting"
        self.snapshot = Snapshot()
        self.errors = 0
        self.round_trip_ms = float("nan")
        self.last_update = 0.0

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        # The worker thread closes the driver as its loop ends, never under a transaction it
        # is still running (a silent bus can hold one beyond this join's timeout).
        self._thread.join(timeout)
        self._fail_pending(CommError("device is shutting down"))

    # -- writes -------------------------------------------------------------------------------
    def submit(self, job: Callable[[Any], Any]) -> Future:
        """Queue ``job(driver)`` to run between refresh cycles; returns a Future of its result.

        Refused at once while the link is down, so a client never waits on a dead instrument.
        """
        fut: Future = Future()
        if self._stop.is_set():
            fut.set_exception(CommError("device is shutting down"))
        elif self.comm is not Comm.CONNECTED:
            fut.set_exception(CommError(f"instrument not reachable ({self.reason})"))
        else:
            self._jobs.put((job, fut))
            self._wake.set()
        return fut

    # -- the loop -----------------------------------------------------------------------------
    def is_stale(self, now: float | None = None) -> bool:
        """True when the snapshot is older than three refresh periods (or there is none).

        A cycle longer than the period (many requests on a slow bus) or a long job between
        cycles (a verified start) is normal operation, not staleness: the allowance grows with
        the last cycle's duration and with the time the current cycle has been running.
        """
        if self.snapshot.time == 0.0:
            return True
        now = time.time() if now is None else now
        started = self._cycle_start
        running = time.monotonic() - started if started is not None else 0.0
        allowance = 3 * max(self.refresh_period_s, self._last_cycle_s) + running
        return now - self.snapshot.time > allowance

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._close_driver()

    def _loop(self) -> None:
        backoff = self.BACKOFF_START_S
        while not self._stop.is_set():
            if self.comm is not Comm.CONNECTED:
                try:
                    self.driver.connect()
                except Exception as exc:
                    self._lost(exc)
                    self._sleep(backoff)
                    backoff = min(backoff * 2, self.BACKOFF_MAX_S)
                    continue
                self.comm, self.reason = Comm.CONNECTED, ""
                log.info("%s: connected", self.name)

            self._cycle_start = cycle_start = time.monotonic()
            done: list[tuple[Future, Any, BaseException | None]] = []
            try:
                self._run_jobs(done)
                t0 = time.monotonic()
                values = self.driver.refresh()
                self.round_trip_ms = (time.monotonic() - t0) * 1000.0
            except Exception as exc:
                self._resolve(done)
                self._lost(exc)
                # A link that opens but whose refresh fails (wrong family, gateway without the
                # slave) must back off too, not reconnect flat out.
                self._sleep(backoff)
                backoff = min(backoff * 2, self.BACKOFF_MAX_S)
                continue
            finally:
                self._last_cycle_s = time.monotonic() - cycle_start
                self._cycle_start = None
            backoff = self.BACKOFF_START_S  # reset only by a good refresh
            now = time.time()
            self.snapshot = Snapshot(values, now)
            self.last_update = now
            # Jobs complete only now, so a client that reads right after its command returns
            # already sees the instrument's answer to it.
            self._resolve(done)
            self._sleep(self.refresh_period_s - (time.monotonic() - cycle_start))

    def _run_jobs(self, done: list[tuple[Future, Any, BaseException | None]]) -> None:
        while True:
            try:
                job, fut = self._jobs.get_nowait()
            except queue.Empty:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                done.append((fut, job(self.driver), None))
            except CommError as exc:
                done.append((fut, None, exc))
                raise  # the link is gone: the loop marks it lost and reconnects
            except Exception as exc:
                done.append((fut, None, exc))

    @staticmethod
    def _resolve(done: list[tuple[Future, Any, BaseException | None]]) -> None:
        for fut, result, exc in done:
            if exc is None:
                fut.set_result(result)
            else:
                fut.set_exception(exc)

    def _close_driver(self) -> None:
        try:
            self.driver.close()
        except Exception:  # closing a dead link must not stop a shutdown or a reconnect
            log.debug("%s: close failed", self.name, exc_info=True)

    def _lost(self, exc: BaseException) -> None:
        self.errors += 1
        reason = str(exc) or type(exc).__name__
        if self.comm is Comm.CONNECTED:
            log.warning("%s: communication lost: %s", self.name, reason)
        self.comm, self.reason = Comm.LOST, reason
        self._fail_pending(CommError(f"instrument not reachable ({reason})"))
        self._close_driver()

    def _fail_pending(self, exc: Exception) -> None:
        while True:
            try:
                _, fut = self._jobs.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                fut.set_exception(exc)

    def _sleep(self, seconds: float) -> None:
        """Wait for the next cycle; a submitted job or stop wakes us early."""
        if seconds > 0:
            self._wake.wait(seconds)
        self._wake.clear()
