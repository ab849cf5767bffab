"""``plantds.sequences``: scripted operation of the plant through its Tango devices.

Waiting primitives that name what they wait for, and the plant's sequences (:mod:`.plant`):

    from plantds.sequences import wait_for_state, wait_until
    wait_until(chiller, "AtSetpoint", bool, timeout=600)          # True, or SequenceError
    wait_for_state(compressor, DevState.ON, timeout=60)

A wait that times out raises :class:`SequenceError` whose message names the device, what was
awaited and the last value seen (or the last error), so a failed sequence says which step's
condition never came.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import tango

POLL_S = 0.2


class SequenceError(RuntimeError):
    """A step of a sequence failed; the message is one line an operator can act on."""


def read_value(proxy: tango.DeviceProxy, attr: str) -> Any:
    """The attribute's value; None when its quality is INVALID (no fresh data)."""
    if attr.lower() == "state":
        return proxy.state()
    reading = proxy.read_attribute(attr)
    return None if reading.quality == tango.AttrQuality.ATTR_INVALID else reading.value


def wait_until(
    proxy: tango.DeviceProxy,
    attr: str,
    predicate: Callable[[Any], bool],
    timeout: float,
    what: str | None = None,
    poll_s: float = POLL_S,
) -> Any:
    """Read ``attr`` until ``predicate(value)`` holds and return that value.

    An INVALID reading (None) and a failed read count as "not yet". After ``timeout`` seconds
    raise :class:`SequenceError` naming ``what`` (default: the attribute), the last value seen
    and the last read error.
    """
    description = what or attr
    deadline = time.monotonic() + timeout
    last: Any = "nothing read"
    error = ""
    while True:
        try:
            value = read_value(proxy, attr)
            last, error = value, ""
            if value is not None and predicate(value):
                return value
        except tango.DevFailed as exc:
            error = exc.args[0].desc.strip().splitlines()[0]
        if time.monotonic() >= deadline:
            seen = f"last {attr} read {_show(last)}" + (f", last error: {error}" if error else "")
            raise SequenceError(
                f"{proxy.dev_name()}: {description} did not come within {timeout:g} s ({seen})"
            )
        time.sleep(poll_s)


def wait_for_state(
    proxy: tango.DeviceProxy, *states: tango.DevState, timeout: float, what: str | None = None
) -> tango.DevState:
    """Wait until the device's State is one of ``states``; the error also quotes its Status."""
    wanted = " or ".join(str(s) for s in states)
    try:
        return wait_until(proxy, "State", lambda s: s in states, timeout, what or f"State {wanted}")
    except SequenceError as exc:
        try:
            status = proxy.status().strip().splitlines()[0]
        except tango.DevFailed:
            raise exc from None
        raise SequenceError(f"{exc}; Status: {status}") from None


def _show(value: Any) -> str:
    if value is None:
        return "INVALID (no fresh data)"
    if isinstance(value, str):
        return repr(value)
    return str(value)
