"""Foreground commands (the simulators) run until Ctrl-C or SIGTERM, and stop the same way."""

from __future__ import annotations

import signal
import threading


def wait_until_stopped() -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM (systemd, ``docker stop``, a test's terminate()).

    Both only set an event, so the caller's ``finally``/``with`` cleanup runs in the main
    thread either way. Python ignores SIGTERM's default action only when a handler is set:
    without one, a simulator killed by SIGTERM leaves its threads' sockets to the OS.
    """
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(1.0):  # a timed wait, so a signal is seen at once
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
