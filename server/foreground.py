"""Foreground commands (the simulators) run until Ctrl-C or SIGTERM, and stop the same way."""

from __future__ import annotations

import signal
import threading


def stop_requested() -> threading.Event:
    """An event that Ctrl-C (SIGINT) and SIGTERM (systemd, ``docker stop``, a test's
    terminate()) set from now on. Call it before announcing that the process is ready: a signal
    that comes earlier would otherwise end it without its cleanup.

    The handlers only set the event, so the caller's ``finally``/``with`` cleanup runs in the
    main thread either way.
    """
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def wait_until_stopped(stop: threading.Event) -> None:
    while not stop.wait(1.0):  # a timed wait, so a signal is seen at once
        pass
