"""The I/O worker: the only thread that talks to an instrument.

One worker per device runs the refresh cycle every ``RefreshPeriod``, reconnects with capped
exponential backoff, and publishes an immutable :class:`Snapshot`. Tango attribute reads only
ever look at the snapshot; they never touch the wire.

Jobs (writes, commands, on-demand reads) jump the queue: they run between two transactions of
the refresh in progress (the driver calls ``checkpoint`` there) or at once when the worker is
idle, so a client waits for its own transactions plus at most one already on the wire, never
for a whole cycle. A job not started by its deadline is withdrawn and never sent. What a job
learns from the instrument (an echo, a read-back) is merged into the snapshot before the job
completes, so a read right after a write returns the new value.

A driver is any object with::

    connect() -> None                       # open/verify the link; raise CommError if unreachable
    close() -> None                         # release the link
    refresh(checkpoint) -> dict[str, Any]   # one cycle, calling checkpoint() between transactions;
                                            # None as a value means "invalid"
    learned: dict[str, Any]                 # values a job's transactions told (the worker takes them)

A job that starts something the instrument needs time to follow (a compressor start) returns a
:class:`Settle`: the client gets its answer at once, the device shows MOVING, and the worker
checks the condition at each refresh and reports the outcome in ``last_result``.
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

from .errors import ConfigMismatch
from .links import CommError

log = logging.getLogger(__name__)


class Comm(enum.Enum):
    """Communication state, kept apart from the instrument's own state (SKA style)."""

    CONNECTING = "connecting"  # first attempt after start or Init: Tango INIT
    CONNECTED = "connected"
    LOST = "lost"  # was reachable or never became reachable: Tango UNKNOWN
    MISMATCH = "mismatch"  # answers, but not as configured: Tango FAULT naming the property


class Withdrawn(CommError):
    """A job was not started before its client's deadline; nothing was sent."""


@dataclass(frozen=True)
class Snapshot:
    """Values of one refresh cycle, all from the same instant, plus what jobs learned since."""

    values: Mapping[str, Any] = field(default_factory=dict)
    time: float = 0.0  # epoch seconds of the last full refresh; 0 = never acquired
    stamps: Mapping[str, float] = field(default_factory=dict)  # newer times of job-learned keys

    def stamp(self, key: str) -> float:
        return self.stamps.get(key, self.time)


@dataclass
class Settle:
    """What a command waits for after the instrument accepted it, checked at every refresh."""

    doing: str  # Status while it runs, e.g. "starting: waiting for the panel to report Starting"
    reached: Callable[[Mapping[str, Any]], str | None]  # snapshot values → outcome once followed
    within_s: float
    # (driver, values) at the deadline → a new Settle (e.g. after a resend) or the failure text
    on_timeout: Callable[[Any, Mapping[str, Any]], "Settle | str"]
    result: Any = None  # what the command returns to its client at once


@dataclass
class _Job:
    run: Callable[[Any], Any]
    future: Future
    what: str
    deadline: float  # monotonic: not started by then → withdrawn
    record: bool  # its outcome goes to last_result (commands and writes, not plain reads)


class IOWorker:
    """Refresh cycle, job queue, reconnect and snapshot for one device."""

    BACKOFF_START_S = 0.5
    BACKOFF_MAX_S = 10.0
    SETTLE_POLL_S = 0.2  # refresh period while a command settles (a start shows within ~1 s)

    def __init__(self, name: str, driver: Any, refresh_period_s: float):
        self.name = name
        self.driver = driver
        self.refresh_period_s = max(0.01, refresh_period_s)
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"io-{name}", daemon=True)

        self._last_cycle_s = 0.0
        self.comm = Comm.CONNECTING
        self.reason = "connecting"  # why the link is down, one line, for Status
        self.last_error = ""  # the technical detail of the last failure, for LastError
        self.hint = ""  # what the operator should check, when the failure says (Status)
        self.snapshot = Snapshot()
        self.errors = 0
        self.round_trip_ms = float("nan")
        self.last_update = 0.0
        self.last_result = ""  # outcome of the last command or write, for LastCommandResult
        self.settling: Settle | None = None
        self.command_failure: str | None = None  # a command the instrument did not follow
        self._settle_what = ""
        self._settle_deadline = 0.0
        self._failed: Settle | None = None
        # What jobs learned during the refresh in progress: newer than what that refresh read
        # before the job ran, so it wins over the refresh's own values.
        self._cycle_learned: dict[str, Any] = {}
        # Called on the worker thread after every change of snapshot or result (the device
        # pushes events from its own thread; this must not block).
        self.on_update: Callable[[], None] | None = None

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

    # -- jobs -----------------------------------------------------------------------------------
    def submit(
        self, job: Callable[[Any], Any], what: str = "job", deadline: float | None = None,
        record: bool = True,
    ) -> Future:
        """Queue ``job(driver)``; returns a Future of its result.

        ``deadline`` (monotonic) is when the client stops waiting: a job not started by then is
        withdrawn, never sent later. Refused at once while the link is down, so a client never
        waits on a dead instrument.
        """
        fut: Future = Future()
        if self._stop.is_set():
            fut.set_exception(CommError("device is shutting down"))
        elif self.comm is not Comm.CONNECTED:
            fut.set_exception(CommError(f"instrument not reachable ({self.reason})"))
        else:
            deadline = time.monotonic() + 3600.0 if deadline is None else deadline
            self._jobs.put(_Job(job, fut, what, deadline, record))
            self._wake.set()
        return fut

    def checkpoint(self) -> None:
        """Run every queued job now (the driver calls this between two transactions)."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            self._run_job(job)

    def _run_job(self, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return  # the client withdrew it
        if time.monotonic() > job.deadline:
            job.future.set_exception(Withdrawn(f"{job.what} was withdrawn: not started in time"))
            return
        learned = getattr(self.driver, "learned", None)
        if learned:
            learned.clear()  # only what this job's own transactions tell counts
        try:
            result = job.run(self.driver)
        except BaseException as exc:
            self._take_learned()
            if job.record:
                self._set_result(f"{job.what} failed: {exc}")
            job.future.set_exception(exc)
            if isinstance(exc, CommError):
                raise  # the link is gone: the loop marks it lost and reconnects
            return
        self._take_learned()
        if isinstance(result, Settle):
            self.settling, self._settle_what = result, job.what
            self._settle_deadline = time.monotonic() + result.within_s
            self.command_failure, self._failed = None, None
            if job.record:
                self._set_result(f"{job.what}: accepted; {result.doing}")
            result = result.result
        elif job.record:
            self.command_failure, self._failed = None, None
            done = "" if result is None or isinstance(result, (dict, list, tuple)) else f": {result}"
            self._set_result(f"{job.what}: done{done}")
        job.future.set_result(result)

    def _take_learned(self) -> None:
        """Merge what a job's transactions told into the snapshot (before the job completes)."""
        learned = getattr(self.driver, "learned", None)
        if not learned:
            return
        updates = dict(learned)
        learned.clear()
        self._cycle_learned.update(updates)
        now = time.time()
        snap = self.snapshot
        self.snapshot = Snapshot(
            {**snap.values, **updates}, snap.time, {**snap.stamps, **{k: now for k in updates}}
        )
        self._notify()

    def _set_result(self, text: str) -> None:
        self.last_result = text
        log.info("%s: %s", self.name, text)
        self._notify()

    def _notify(self) -> None:
        if self.on_update is not None:
            self.on_update()

    # -- the loop -----------------------------------------------------------------------------
    def is_stale(self, now: float | None = None) -> bool:
        """True when the snapshot is older than three refresh periods (or there is none).

        A cycle longer than the period (many requests on a slow bus) is normal operation: the
        allowance is three times the longer of the period and the last cycle.
        """
        if self.snapshot.time == 0.0:
            return True
        now = time.time() if now is None else now
        return now - self.snapshot.time > 3 * max(self.refresh_period_s, self._last_cycle_s)

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._close_driver()

    def _loop(self) -> None:
        backoff = self.BACKOFF_START_S
        while not self._stop.is_set():
            try:
                if self.comm not in (Comm.CONNECTED,):
                    self.driver.connect()
                    self.comm, self.reason = Comm.CONNECTED, ""
                    log.info("%s: connected", self.name)
                    self._notify()
                cycle_start = time.monotonic()
                self._cycle_learned = {}
                try:
                    values = self.driver.refresh(self.checkpoint)
                finally:
                    self._last_cycle_s = time.monotonic() - cycle_start
                self.round_trip_ms = self._last_cycle_s * 1000.0
                backoff = self.BACKOFF_START_S  # reset only by a good refresh
                now = time.time()
                self.snapshot = Snapshot({**values, **self._cycle_learned}, now)
                self.last_update = now
                self._notify()
                self._follow(values)
                period = self.SETTLE_POLL_S if self.settling else self.refresh_period_s
                self._idle_until(cycle_start + period)
            except Exception as exc:
                self._lost(exc)
                # A link that opens but whose refresh fails (wrong family, gateway without the
                # slave) must back off too, not reconnect flat out.
                self._sleep(backoff)
                backoff = min(backoff * 2, self.BACKOFF_MAX_S)

    def _follow(self, values: Mapping[str, Any]) -> None:
        """Check the settling command against the new snapshot; report its outcome."""
        if self._failed is not None and self._failed.reached(values):
            self.command_failure, self._failed = None, None  # followed after all (e.g. at the panel)
            self._notify()
        settle = self.settling
        if settle is None:
            return
        outcome = settle.reached(values)
        if outcome is not None:
            self.settling = None
            self._set_result(f"{self._settle_what}: {outcome}")
        elif time.monotonic() >= self._settle_deadline:
            self.settling = None
            followup = settle.on_timeout(self.driver, values)  # may resend (a transaction)
            if isinstance(followup, Settle):
                self.settling = followup
                self._settle_deadline = time.monotonic() + followup.within_s
                self._set_result(f"{self._settle_what}: {followup.doing}")
            else:
                self.command_failure, self._failed = followup, settle
                log.warning("%s: %s: %s", self.name, self._settle_what, followup)
                self._set_result(f"{self._settle_what}: {followup}")

    def _idle_until(self, until: float) -> None:
        """Wait for the next cycle, running jobs the moment they arrive."""
        while not self._stop.is_set():
            self.checkpoint()
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            self._sleep(remaining)

    def _close_driver(self) -> None:
        try:
            self.driver.close()
        except Exception:  # closing a dead link must not stop a shutdown or a reconnect
            log.debug("%s: close failed", self.name, exc_info=True)

    def _lost(self, exc: BaseException) -> None:
        self.errors += 1
        reason = str(exc) or type(exc).__name__
        comm = Comm.MISMATCH if isinstance(exc, ConfigMismatch) else Comm.LOST
        if self.comm is Comm.CONNECTED or comm is not self.comm:
            log.warning("%s: %s: %s", self.name, "reply does not fit the configuration"
                        if comm is Comm.MISMATCH else "communication lost", reason)
        self.comm, self.reason, self.last_error = comm, reason, reason
        self.hint = getattr(exc, "hint", "")
        if self.settling is not None:
            self._set_result(f"{self._settle_what}: not confirmed, the link was lost ({reason})")
            self.settling = None
        self._fail_pending(CommError(f"instrument not reachable ({reason})"))
        self._close_driver()
        self._notify()

    def _fail_pending(self, exc: Exception) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(exc)

    def _sleep(self, seconds: float) -> None:
        """Wait for the next cycle or the next backoff attempt; a job or stop wakes us early."""
        if seconds > 0:
            self._wake.wait(seconds)
        self._wake.clear()
