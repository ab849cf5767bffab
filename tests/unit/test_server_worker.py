"""The I/O worker and the shared links, driven by a scripted driver of our own interface."""

from __future__ import annotations

import threading
import time

import pytest

from plantds.server import links
from plantds.server.errors import CommError
from plantds.server.testing import wait_for
from plantds.server.worker import Comm, IOWorker, Settle, Withdrawn

# How long a test waits for a job's result: a bound for a hung worker, never a duration that is
# checked (a loaded machine can stall the worker thread for seconds).
JOB_WAIT_S = 30.0


class ScriptedDriver:
    """Implements the driver interface; reachability and values are set by the test."""

    def __init__(self):
        self.reachable = True
        self.value = 1
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def connect(self):
        self.calls.append("connect")
        if not self.reachable:
            raise CommError("connection refused")

    def close(self):
        self.calls.append("close")

    def refresh(self, checkpoint=lambda: None):
        self.calls.append("refresh")
        if not self.reachable:
            raise CommError("timeout")
        return {"x": self.value}

    def set_value(self, v):
        self.calls.append(f"set {v}")
        if not self.reachable:
            raise CommError("timeout during write")
        self.value = v
        return v


@pytest.fixture
def worker():
    drv = ScriptedDriver()
    w = IOWorker("test", drv, refresh_period_s=0.05)
    w.BACKOFF_START_S = 0.02
    w.BACKOFF_MAX_S = 0.05
    w.start()
    yield w
    w.stop()


def test_refresh_publishes_snapshot_with_acquisition_time(worker):
    wait_for(lambda: worker.snapshot.values.get("x") == 1)
    assert worker.comm is Comm.CONNECTED
    assert 1e9 < worker.snapshot.time <= time.time()  # an epoch time (Tango's), not a monotonic one
    assert worker.last_update == worker.snapshot.time
    assert worker.round_trip_ms >= 0


def test_job_runs_between_cycles_and_result_is_returned(worker):
    wait_for(lambda: worker.comm is Comm.CONNECTED)
    assert worker.submit(lambda drv: drv.set_value(7)).result(JOB_WAIT_S) == 7
    wait_for(lambda: worker.snapshot.values.get("x") == 7)
    # the write never ran in the middle of a refresh: calls are whole items, in order
    calls = worker.driver.calls
    i = calls.index("set 7")
    assert calls[i + 1] in ("refresh", "set 7")


def test_job_exception_is_returned_not_fatal(worker):
    wait_for(lambda: worker.comm is Comm.CONNECTED)

    def bad(drv):
        raise ValueError("value 99 above the maximum 50")

    with pytest.raises(ValueError, match="maximum 50"):
        worker.submit(bad).result(JOB_WAIT_S)
    assert worker.comm is Comm.CONNECTED


def test_link_loss_marks_lost_counts_and_recovers(worker):
    wait_for(lambda: worker.comm is Comm.CONNECTED)
    worker.driver.reachable = False
    wait_for(lambda: worker.comm is Comm.LOST)
    assert "timeout" in worker.reason or "refused" in worker.reason
    errors = worker.errors
    assert errors >= 1
    # writes are refused at once while the link is down, with the reason
    with pytest.raises(CommError, match="not reachable"):
        worker.submit(lambda drv: drv.set_value(3)).result(JOB_WAIT_S)
    assert "set 3" not in worker.driver.calls
    worker.driver.reachable = True
    wait_for(lambda: worker.comm is Comm.CONNECTED)
    stamp = worker.snapshot.time
    wait_for(lambda: worker.snapshot.time > stamp)
    assert worker.errors >= errors


def test_snapshot_goes_stale_after_three_periods(worker):
    wait_for(lambda: worker.snapshot.time > 0)
    now = worker.snapshot.time
    assert not worker.is_stale(now + 2 * worker.refresh_period_s)
    assert worker.is_stale(now + 3.5 * worker.refresh_period_s)


def test_never_acquired_is_stale():
    w = IOWorker("idle", ScriptedDriver(), 1.0)
    assert w.is_stale()


class RecordingWorker(IOWorker):
    """Records the waits the loop asks for instead of sleeping; stops after ``limit`` waits."""

    def __init__(self, driver, limit: int):
        super().__init__("recording", driver, 0.05)
        self.waits: list[float] = []
        self.limit = limit

    def _sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 3))
        if len(self.waits) >= self.limit:
            self._stop.set()


def run_until_stopped(worker: IOWorker) -> None:
    worker.start()
    worker._thread.join(JOB_WAIT_S)
    assert not worker._thread.is_alive()


def test_backoff_doubles_up_to_its_cap_while_unreachable():
    drv = ScriptedDriver()
    drv.reachable = False
    w = RecordingWorker(drv, limit=7)
    w.BACKOFF_START_S, w.BACKOFF_MAX_S = 0.5, 4.0
    run_until_stopped(w)
    assert w.waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert w.comm is Comm.LOST and w.errors == 7


class RefreshFails(ScriptedDriver):
    """Connects fine, but every refresh fails: a wrong family, a gateway without the slave."""

    def refresh(self, checkpoint=lambda: None):
        self.calls.append("refresh")
        raise CommError("exception reply 0x0B: gateway target failed to respond")


def test_a_refresh_that_keeps_failing_after_connect_backs_off_too():
    drv = RefreshFails()
    w = RecordingWorker(drv, limit=5)
    w.BACKOFF_START_S, w.BACKOFF_MAX_S = 0.5, 4.0
    run_until_stopped(w)
    assert w.waits == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert drv.calls.count("refresh") == 5
    assert "0x0B" in w.reason


def test_a_good_refresh_resets_the_backoff():
    drv = ScriptedDriver()
    w = RecordingWorker(drv, limit=6)
    w.BACKOFF_START_S, w.BACKOFF_MAX_S = 0.5, 4.0
    flips = iter([False, False, True])  # two failed refreshes, then good ones

    def refresh(checkpoint=lambda: None):
        ok = next(flips, True)
        drv.calls.append("refresh")
        if not ok:
            raise CommError("timeout")
        return {"x": 1}

    drv.refresh = refresh
    run_until_stopped(w)
    assert w.waits[:2] == [0.5, 1.0]
    # after the good refresh: the period wait, and the next failure would start again at 0.5
    assert all(wait <= w.refresh_period_s for wait in w.waits[2:])


def test_a_job_withdrawn_before_it_ran_never_reaches_the_instrument(worker):
    wait_for(lambda: worker.comm is Comm.CONNECTED)
    release = threading.Event()
    busy = worker.submit(lambda drv: release.wait(JOB_WAIT_S))
    wait_for(lambda: busy.running())
    late = worker.submit(lambda drv: drv.set_value(42))
    assert late.cancel()  # what run_on_instrument does when its client gave up
    release.set()
    busy.result(JOB_WAIT_S)
    stamp = worker.snapshot.time
    wait_for(lambda: worker.snapshot.time > stamp)
    assert "set 42" not in worker.driver.calls


class TwoStepDriver(ScriptedDriver):
    """A refresh of two transactions with a checkpoint between them, like the real drivers."""

    def __init__(self):
        super().__init__()
        self.learned = {}
        self.setpoint = 20.0

    def refresh(self, checkpoint=lambda: None):
        self.calls.append("read setpoint")
        setpoint = self.setpoint
        checkpoint()
        self.calls.append("read status")
        return {"x": self.value, "setpoint": setpoint}

    def write_setpoint(self, value):
        self.calls.append(f"write {value}")
        self.setpoint = value
        self.learned["setpoint"] = value  # the instrument's echo
        return value


@pytest.fixture
def two_step():
    w = IOWorker("two-step", TwoStepDriver(), refresh_period_s=0.05)
    w.start()
    wait_for(lambda: w.snapshot.time > 0)
    yield w
    w.stop()


def test_a_job_runs_between_two_transactions_of_a_refresh(two_step):
    """Submitted while a refresh holds the worker, it runs at the refresh's checkpoint."""
    drv = two_step.driver
    release, in_refresh = threading.Event(), threading.Event()
    first_read = drv.refresh

    def slow_refresh(checkpoint=lambda: None):
        in_refresh.set()
        release.wait(5)  # the first transaction is on the wire
        return first_read(checkpoint)

    drv.refresh = slow_refresh
    in_refresh.clear()
    assert in_refresh.wait(5)
    fut = two_step.submit(lambda d: d.write_setpoint(18.0))
    release.set()
    fut.result(2)
    drv.refresh = first_read
    calls = drv.calls
    i = calls.index("write 18.0")
    assert calls[i - 1] == "read setpoint"  # after the refresh's first transaction...
    wait_for(lambda: len(calls) > i + 1)
    assert calls[i + 1] == "read status"  # ...and before its second


def test_a_job_result_is_in_the_snapshot_before_the_job_completes(two_step):
    for value in (18.0, 19.0, 21.5, 17.25):
        assert two_step.submit(lambda drv, v=value: drv.write_setpoint(v)).result(2) == value
        assert two_step.snapshot.values["setpoint"] == value  # no refresh needed
        assert two_step.snapshot.stamp("setpoint") >= two_step.snapshot.time


def test_a_refresh_never_publishes_a_value_older_than_a_job_it_ran(two_step):
    """The refresh read the set point before the job wrote it: the echo must win."""
    before = two_step.snapshot.time
    two_step.submit(lambda drv: drv.write_setpoint(12.5)).result(2)
    for _ in range(3):
        wait_for(lambda: two_step.snapshot.time > before)
        before = two_step.snapshot.time
        assert two_step.snapshot.values["setpoint"] == 12.5


def test_a_job_not_started_by_its_deadline_is_withdrawn_and_never_sent(worker):
    wait_for(lambda: worker.comm is Comm.CONNECTED)
    release = threading.Event()
    busy = worker.submit(lambda drv: release.wait(5))
    wait_for(lambda: busy.running())
    late = worker.submit(lambda drv: drv.set_value(43), deadline=time.monotonic() + 0.05)
    time.sleep(0.1)
    release.set()
    with pytest.raises(Withdrawn):
        late.result(5)
    assert "set 43" not in worker.driver.calls


def test_a_job_losing_the_link_fails_and_the_worker_reconnects(worker):
    wait_for(lambda: worker.comm is Comm.CONNECTED)

    def lose_the_link_then_write(drv):
        # Lost while the job runs (a refresh in between could notice it first and refuse the job).
        drv.reachable = False
        drv.set_value(5)

    with pytest.raises(CommError):
        worker.submit(lose_the_link_then_write).result(10)
    assert "failed" in worker.last_result
    worker.driver.reachable = True
    wait_for(lambda: worker.comm is Comm.CONNECTED)


def _follower(worker, reached_when, resend_log):
    def settle(attempt):
        def on_timeout(drv, values):
            if attempt == 1:
                resend_log.append(values["x"])
                return settle(2)
            return f"not obeyed after {attempt} writes, x = {values['x']}"

        return Settle("waiting for x", lambda v: f"x reached {v['x']}" if reached_when(v) else None,
                      0.2, on_timeout, result="accepted")
    return settle(1)


def test_a_settling_command_returns_at_once_and_reports_when_reached(worker):
    wait_for(lambda: worker.comm is Comm.CONNECTED)
    resends = []
    fut = worker.submit(lambda drv: _follower(worker, lambda v: v["x"] == 9, resends), what="On")
    assert fut.result(2) == "accepted"
    assert worker.settling is not None and "accepted" in worker.last_result
    worker.driver.value = 9  # the instrument follows
    wait_for(lambda: worker.settling is None)
    assert worker.last_result == "On: x reached 9"
    assert worker.command_failure is None and resends == []


def test_a_command_not_followed_is_resent_once_then_reported_and_cleared_when_followed(worker):
    wait_for(lambda: worker.comm is Comm.CONNECTED)
    resends = []
    worker.submit(lambda drv: _follower(worker, lambda v: v["x"] == 9, resends), what="On").result(2)
    wait_for(lambda: worker.command_failure is not None)
    assert resends == [1]
    assert worker.last_result == "On: not obeyed after 2 writes, x = 1"
    worker.driver.value = 9  # e.g. started at the panel afterwards
    wait_for(lambda: worker.command_failure is None)


def test_links_are_shared_by_key_and_closed_by_the_last_user():
    opened = []

    class Transport:
        closed = False

        def close(self):
            self.closed = True

    def opener():
        t = Transport()
        opened.append(t)
        return t

    a = links.acquire("serial:///dev/ttyTEST0", opener)
    b = links.acquire("serial:///dev/ttyTEST0", opener)
    assert a is b
    with a.lock:
        assert a.transport() is b.transport()
    assert len(opened) == 1
    links.release(a)
    assert not opened[0].closed
    links.release(b)
    assert opened[0].closed
    c = links.acquire("serial:///dev/ttyTEST0", opener)
    assert c is not a
    links.release(c)


def test_link_opener_failure_is_a_comm_error():
    def opener():
        raise OSError("No such file or directory: '/dev/ttyUSB9'")

    link = links.acquire("serial:///dev/ttyUSB9", opener)
    try:
        with pytest.raises(CommError, match="ttyUSB9"):
            link.transport()
    finally:
        links.release(link)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("tcp://10.0.0.5", ("tcp", "10.0.0.5", 502, "")),
        ("tcp://cpa.local:1502", ("tcp", "cpa.local", 1502, "")),
        ("serial:///dev/ttyUSB0", ("serial", "", 502, "/dev/ttyUSB0")),
    ],
)
def test_split_url(url, expected):
    assert links.split_url(url, 502) == expected


@pytest.mark.parametrize("url", ["127.0.0.1:502", "tcp://host:notaport"])
def test_split_url_rejects_malformed(url):
    with pytest.raises(ValueError, match="Url"):
        links.split_url(url, 502)
