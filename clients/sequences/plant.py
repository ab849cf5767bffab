"""The plant's sequences: cool-down (chiller, then compressor) and warm-up/stop in reverse.

Each sequence is a list of :class:`Step`: an optional command, then the condition that shows
it took effect, waited for with a deadline. Progress is reported one line per step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import tango
from tango import DevState

from . import SequenceError, wait_for_state, wait_until

COMPRESSOR_CLASS = "CryomechCPA"
CHILLER_CLASS = "ColeParmerChiller"
# CPA operating state codes (register 30001): idle and running.
CPA_IDLE, CPA_RUNNING = 0, 3
# Chiller On/Off may take ~9 s with resends; a compressor start/stop ~3 s.
COMMAND_TIMEOUT_MS = 20000


@dataclass
class Step:
    text: str
    run: Callable[[], object]


def exported_devices(tango_class: str, db: tango.Database | None = None) -> list[str]:
    """Names of the running devices of ``tango_class`` in the Tango DB, sorted."""
    db = db or tango.Database()
    return sorted(db.get_device_exported_for_class(tango_class))


def choose(tango_class: str, name: str | None, option: str) -> tango.DeviceProxy:
    """The named device, or the only running device of its class."""
    if name is None:
        names = exported_devices(tango_class)
        if len(names) != 1:
            found = ", ".join(names) or "none running"
            raise SequenceError(f"{len(names)} {tango_class} devices ({found}): name one with {option}")
        name = names[0]
    proxy = tango.DeviceProxy(name)
    proxy.set_timeout_millis(COMMAND_TIMEOUT_MS)
    return proxy


def cooldown(
    compressor: tango.DeviceProxy, chiller: tango.DeviceProxy, timeout: float, setpoint: float | None = None
) -> list[Step]:
    """Chiller on → bath at its set point → compressor on → running → no warnings."""
    steps = []
    if setpoint is not None:
        steps.append(Step(f"{chiller.dev_name()}: Setpoint = {setpoint:g} degC",
                          lambda: chiller.write_attribute("Setpoint", setpoint)))
    return steps + [
        Step(f"{chiller.dev_name()}: On", chiller.On),
        Step(f"{chiller.dev_name()}: wait for State ON",
             lambda: wait_for_state(chiller, DevState.ON, timeout=timeout)),
        Step(f"{chiller.dev_name()}: wait until the bath is at its set point (AtSetpoint)",
             lambda: wait_until(chiller, "AtSetpoint", bool, timeout, "the bath at its set point (AtSetpoint)")),
        Step(f"{compressor.dev_name()}: On", compressor.On),
        Step(f"{compressor.dev_name()}: wait until running",
             lambda: wait_until(compressor, "OperatingStateCode", lambda c: c == CPA_RUNNING, timeout,
                                f"running (OperatingStateCode {CPA_RUNNING})")),
        Step(f"{compressor.dev_name()}: check there are no warnings or alarms",
             lambda: wait_for_state(compressor, DevState.ON, timeout=timeout,
                                    what="State ON without warnings or alarms")),
    ]


def warmup(compressor: tango.DeviceProxy, chiller: tango.DeviceProxy, timeout: float) -> list[Step]:
    """The stop in reverse: compressor off → idle → chiller off → stopped."""
    return [
        Step(f"{compressor.dev_name()}: Off", compressor.Off),
        Step(f"{compressor.dev_name()}: wait until idle",
             lambda: wait_until(compressor, "OperatingStateCode", lambda c: c == CPA_IDLE, timeout,
                                f"idle (OperatingStateCode {CPA_IDLE})")),
        Step(f"{chiller.dev_name()}: Off", chiller.Off),
        Step(f"{chiller.dev_name()}: wait for State OFF",
             lambda: wait_for_state(chiller, DevState.OFF, timeout=timeout)),
    ]



def run_steps(steps: list[Step], progress: Callable[[str], None] = print) -> None:
    """Run the steps in order, reporting each; the first failure stops the sequence."""
    for number, step in enumerate(steps, 1):
        prefix = f"[{number}/{len(steps)}] {step.text}"
        progress(f"{prefix} ...")
        started = time.monotonic()
        try:
            step.run()
        except tango.DevFailed as exc:
            raise SequenceError(f"step {number} ({step.text}) failed: {exc.args[0].desc.strip()}") from None
        except SequenceError as exc:
            raise SequenceError(f"step {number} failed: {exc}") from None
        progress(f"{prefix}: done in {time.monotonic() - started:.1f} s")
