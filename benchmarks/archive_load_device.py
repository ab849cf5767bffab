"""A load for benchmarks/archive_rate.py: one Tango device with ``Attributes`` double attributes
(value000, value001, …), each pushing an archive event with a new value every ``PeriodMs``.

Usage (the benchmark starts it): python benchmarks/archive_load_device.py INSTANCE -ORBendPoint …
"""

from __future__ import annotations

import threading
import time

from tango import AttrQuality, DevState
from tango.server import Device, attribute, device_property, run


class ArchiveLoad(Device):
    Attributes = device_property(dtype=int, default_value=100)
    PeriodMs = device_property(dtype=int, default_value=1000)

    def init_device(self):
        super().init_device()
        self._names = [f"value{i:03d}" for i in range(self.Attributes)]
        self._values = {name: 0.0 for name in self._names}
        for name in self._names:
            self.add_attribute(attribute(name=name, dtype=float, fget=self.read_value))
            # pushed by the device (implemented, no detection by Tango: every push is an event)
            self.set_archive_event(name, True, False)
        self._stop = threading.Event()
        threading.Thread(target=self._push_loop, daemon=True).start()
        self.set_state(DevState.ON)

    def delete_device(self):
        self._stop.set()

    def read_value(self, attr):
        return self._values[attr.get_name()]

    def _push_loop(self):
        n = 0
        while not self._stop.wait(self.PeriodMs / 1000):
            n += 1
            now = time.time()
            for i, name in enumerate(self._names):
                self._values[name] = n + i / 1000
                self.push_archive_event(name, self._values[name], now, AttrQuality.ATTR_VALID)


if __name__ == "__main__":
    run((ArchiveLoad,))
