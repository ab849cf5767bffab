"""Child processes the demo and the tests start: the embedded Tango DB and PlantDS servers.

Both bind to loopback only and are stopped by whoever started them (context managers).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import tango

LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


def parse_tango_host(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"TANGO_HOST {value!r} is not host:port")
    return host, int(port)


def console_script(name: str) -> str:
    """A console script of this environment (next to the running interpreter first)."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with code {proc.returncode} during start-up.\n{tail}")
        try:
            if predicate():
                return
        except tango.DevFailed:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def embedded_database(tango_host: str, sqlite_file: Path | str, log: Path | None = None) -> Iterator[str]:
    """Run pytango-db's PyDatabaseds (sqlite) at ``tango_host`` until the context exits."""
    host, port = parse_tango_host(tango_host)
    if host not in LOOPBACK_NAMES:
        raise ValueError(f"the embedded database binds to loopback only; TANGO_HOST {tango_host} is not")
    with contextlib.suppress(tango.DevFailed):
        tango.Database(host, port).get_info()
        raise RuntimeError(
            f"a Tango database already answers at {tango_host}; stop it or choose another TANGO_HOST"
        )
    env = dict(os.environ, PYTANGO_DATABASE_NAME=str(sqlite_file), TANGO_HOST=tango_host)
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [console_script("PyDatabaseds"), "--host", host, "--port", str(port), "2"],
        env=env, stdout=out, stderr=subprocess.STDOUT,
    )
    try:
        _wait(lambda: tango.Database(host, port).get_info(), 60, "PyDatabaseds", proc, log)
        yield tango_host
    finally:
        stop_process(proc)
        if log:
            out.close()


@contextlib.contextmanager
def plantds_server(
    instance: str, devices: list[str], tango_host: str, log: Path | None = None, timeout: float = 60
) -> Iterator[subprocess.Popen]:
    """Run ``PlantDS <instance>`` on loopback until every device in ``devices`` answers."""
    with device_server("PlantDS", instance, devices, tango_host, log, timeout) as proc:
        yield proc


@contextlib.contextmanager
def device_server(
    executable: str, instance: str, devices: list[str], tango_host: str, log: Path | None = None,
    timeout: float = 60,
) -> Iterator[subprocess.Popen]:
    """Run the Tango server ``executable <instance>`` (a console script of this environment, e.g.
    PlantDS or PANIC's PyAlarm) on loopback until every device in ``devices`` answers."""
    env = dict(os.environ, TANGO_HOST=tango_host)
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [console_script(executable), instance, "-ORBendPoint", "giop:tcp:127.0.0.1:0"],
        env=env, stdout=out, stderr=subprocess.STDOUT,
    )

    def all_up() -> bool:
        for name in devices:
            tango.DeviceProxy(f"tango://{tango_host}/{name}").ping()
        return True

    try:
        _wait(all_up, timeout, f"{executable}/{instance}", proc, log)
        yield proc
    finally:
        stop_process(proc)
        if log:
            out.close()
