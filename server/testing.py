"""Test harness for device tests: run a PlantDS server on a real Tango DB and wait on it.

Shipped in the package so the project's tests and a site's own acceptance tests share it.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from pathlib import Path
from typing import Callable, Iterator

import tango

from .processes import plantds_server

_instances = itertools.count(1)


@contextlib.contextmanager
def run_plantds(
    tango_host: str,
    devices: dict[str, tuple[str, dict]],
    log_dir: Path,
    attribute_properties: dict[str, dict] | None = None,
) -> Iterator[dict[str, tango.DeviceProxy]]:
    """Register ``devices`` ({name: (class, properties)}) in a fresh server instance and run it."""
    instance = f"test{next(_instances)}"
    server = f"PlantDS/{instance}"
    db = tango.Database()
    for name, (cls, props) in devices.items():
        info = tango.DbDevInfo()
        info.name, info._class, info.server = name, cls, server
        db.add_device(info)
        db.put_device_property(name, {k: [str(v)] if not isinstance(v, list) else v for k, v in props.items()})
        if attribute_properties and name in attribute_properties:
            db.put_device_attribute_property(name, attribute_properties[name])
    try:
        with plantds_server(instance, list(devices), tango_host, log_dir / f"{instance}.log"):
            yield {name: tango.DeviceProxy(name) for name in devices}
    finally:
        db.delete_server(server)



def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except tango.DevFailed as exc:
            last_exc = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f": {last_exc}" if last_exc else ""))


def state_is(proxy: tango.DeviceProxy, *states: tango.DevState) -> Callable[[], bool]:
    return lambda: proxy.state() in states
