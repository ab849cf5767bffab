"""Test harness for device tests: run a PlantDS server on a real Tango DB and wait on it.

Shipped in the package so the project's tests and a site's own acceptance tests share it.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import socket
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import tango

from .processes import plantds_server

_instances = itertools.count(1)
T = TypeVar("T")
# Client timeout of the proxies tests use: commands are verified on the instrument (seconds at
# best), and a loaded machine can take several times longer; a bound for a hung server only.
CLIENT_TIMEOUT_MS = 30_000


def client_proxy(name: str) -> tango.DeviceProxy:
    """A DeviceProxy with the tests' client timeout."""
    device = tango.DeviceProxy(name)
    device.set_timeout_millis(CLIENT_TIMEOUT_MS)
    return device


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
            yield {name: client_proxy(name) for name in devices}
    finally:
        db.delete_server(server)



# What a condition may raise while its answer is simply "not yet": a device that is restarting
# (DevFailed), and a comparison with the None an INVALID attribute reads before its first refresh.
NOT_YET = (tango.DevFailed, TypeError, ValueError)


def wait_for(
    probe: Callable[[], T],
    until: Callable[[T], object] = bool,
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.05,
) -> T:
    """Call ``probe`` until ``until(probe())`` holds, and return that value.

    ``until`` defaults to truth, for a probe that is itself the condition; a probe of a value
    that may be 0 or empty needs its own (e.g. ``lambda v: v is not None``). "Not yet" is no
    failure: an answer ``until`` refuses (False, None) and the exceptions in ``NOT_YET`` are
    retried until ``timeout`` seconds have passed; then the AssertionError names ``what`` with the
    last value and the last exception seen. Deadlines are generous because a loaded CI machine
    can stall a process for seconds; a condition that holds returns at once.
    """
    deadline = time.monotonic() + timeout
    last_value: object = "nothing (no answer yet)"
    last_exc: BaseException | None = None
    while True:
        try:
            value = probe()
            last_value = value
            if until(value):
                return value
        except NOT_YET as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    seen = f"last value {last_value!r}"
    if last_exc is not None:
        seen += f", last exception {type(last_exc).__name__}: {_one_line(last_exc)}"
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; {seen}")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, tango.DevFailed) and exc.args:
        return f"{exc.args[0].reason}: {exc.args[0].desc.strip()}"
    return str(exc)


def valid_value(proxy: tango.DeviceProxy, attribute: str):
    """The attribute's value, or None while its quality is INVALID (not acquired yet)."""
    reading = proxy.read_attribute(attribute)
    return None if reading.quality == tango.AttrQuality.ATTR_INVALID else reading.value


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive loopback ports that nothing listens on now, below the
    kernel's ephemeral range (so that no port 0 bind takes one meanwhile): for a demo plant
    (``plantds demo --port-base``) or simulators that must not collide with another run."""
    low, _ = (int(p) for p in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(200):
        first = random.randrange(20000, max(low, 30000) - count)
        with contextlib.ExitStack() as held:
            try:
                for port in range(first, first + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return first
    raise RuntimeError(f"no {count} consecutive free loopback ports found")


def state_is(proxy: tango.DeviceProxy, *states: tango.DevState) -> Callable[[], bool]:
    return lambda: proxy.state() in states
