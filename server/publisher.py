"""Events from the device itself: one thread per device pushes what each new snapshot holds.

The I/O worker must never wait for Tango (a client request holds the device's monitor while it
waits for a job the worker has to run), so it only wakes this thread. The thread takes the
device's monitor, as a Tango request does, and lets the device push change and archive events
(Tango's own detection applies the DB's abs_change/rel_change/archive_* settings) and set the
write values of its writable attributes to what the instrument holds.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import tango

log = logging.getLogger(__name__)


class Publisher:
    """Runs ``device.publish()`` inside the device's monitor each time it is woken."""

    def __init__(self, device: Any, name: str):
        self._device = device
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"events-{name}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop publishing. Called with the monitor held (Init, shutdown), so no join: the
        thread sees the flag as soon as it gets the monitor and never pushes again."""
        self._stopped = True
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopped:
                return
            with tango.AutoTangoMonitor(self._device):
                if self._stopped:
                    return
                try:
                    self._device.publish()
                except Exception:  # one failed push must not end the device's events
                    log.exception("publishing events failed")
