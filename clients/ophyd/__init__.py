"""``plantds.ophyd``: ophyd-async devices for bluesky plans (extra ``[bluesky]``).

    from bluesky import RunEngine, plans as bp
    from ophyd_async.core import init_devices
    from plantds.ophyd import Chiller, ChillerSetpoint, Compressor, HeatPump

    RE = RunEngine()
    with init_devices():
        chiller = Chiller("plant/chiller/1")
        chiller_setpoint = ChillerSetpoint("plant/chiller/1")
        cpa = Compressor("plant/compressor/1")
    RE(bp.scan([chiller], chiller_setpoint, 18, 20, 3))   # each step waits for AtSetpoint
    RE(bp.count([cpa, chiller]))                          # temperatures, pressures, states, units

``ChillerSetpoint`` is movable: ``set(v)`` writes ``Setpoint`` and completes once the chiller
reports ``AtSetpoint`` in a reading taken after the write (tolerance and hold time are the
device's properties); it reads the set point the chiller stored. It is a device of its own, not
a child of ``Chiller``: bluesky reads a child only through its parent, so a scan would not
record it. ``on``/``off`` are the devices' commands as triggerable actions
(``bps.trigger(cpa.on, wait=True)``). Signals are polled by ophyd-async every ``POLL_S``, so
nothing depends on the attributes' Tango event configuration; during a run (devices staged)
readings come from that polling and may be up to ``POLL_S`` old.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Mapping

from ophyd_async.core import (
    MovableLogic,
    SignalR,
    SignalRW,
    StandardMovable,
    StandardReadable,
    TimeoutCalculator,
)
from ophyd_async.core import StandardReadableFormat as Format
from ophyd_async.tango.core import DevStateEnum, make_backend, tango_triggerable_command

POLL_S = 0.2
# Heat pump values read by default, with their Tango types: the monitoring set's measurements
# (README, RotexHPSU; table entries of type float are doubles, the others integers).
HEATPUMP_VALUES = {"t_hs": float, "t_return": float, "t_ext": float, "t_dhw": float,
                   "water_pressure": float, "flow_rate": int}


def _polled(signal_class, datatype, trl: str, attribute: str):
    """A signal on ``trl/attribute`` that ophyd-async polls (every change reported)."""
    backend = make_backend(datatype, f"{trl}/{attribute}", f"{trl}/{attribute}")
    backend.allow_events(False)
    backend.set_polling(True, POLL_S, 0, None)
    return signal_class(backend)


def _readable(datatype, trl: str, attribute: str) -> SignalR:
    return _polled(SignalR, datatype, trl, attribute)


@dataclass
class AtSetpointLogic(MovableLogic[float]):
    """Write the set point, then wait for ``AtSetpoint`` true in a reading acquired after the
    write returned: an older one may still judge the previous set point (the device restarts
    the hold time when the set point changes)."""

    at_setpoint: SignalR[bool]

    async def move(self, new_position: float, timeout: TimeoutCalculator) -> None:
        await self.setpoint.set(new_position, timeout=timeout())
        written = time.time()
        await asyncio.wait_for(self._settled(written), timeout())

    async def _settled(self, written: float) -> None:
        while True:
            reading = (await self.at_setpoint.read())[self.at_setpoint.name]
            if reading["value"] and reading["timestamp"] >= written:
                return
            await asyncio.sleep(POLL_S)


class ChillerSetpoint(StandardReadable, StandardMovable[float]):
    """The chiller's ``Setpoint``: reads the value the chiller stored; ``set`` waits for the bath."""

    def __init__(self, trl: str, name: str = "") -> None:
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.user_readback = _readable(float, trl, "Setpoint")
        self.user_setpoint = _polled(SignalRW, float, trl, "Setpoint")
        self.at_setpoint = _readable(bool, trl, "AtSetpoint")
        super().__init__(name=name)

    @cached_property
    def movable_logic(self) -> AtSetpointLogic:
        return AtSetpointLogic(
            setpoint=self.user_setpoint, readback=self.user_readback, at_setpoint=self.at_setpoint
        )


class Chiller(StandardReadable):
    """``ColeParmerChiller``: bath and external temperatures, AtSetpoint, State; ``on``/``off``
    actions (the set point is :class:`ChillerSetpoint`)."""

    def __init__(self, trl: str, name: str = "") -> None:
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.bath = _readable(float, trl, "InternalTemperature")
        with self.add_children_as_readables():
            self.external = _readable(float, trl, "ExternalTemperature")
            self.at_setpoint = _readable(bool, trl, "AtSetpoint")
            self.state = _readable(DevStateEnum, trl, "State")
        self.on = tango_triggerable_command(f"{trl}/On")
        self.off = tango_triggerable_command(f"{trl}/Off")
        super().__init__(name=name)


class Compressor(StandardReadable):
    """``CryomechCPA``: pressures, temperatures, motor current, operating state code, warnings and
    alarms as text, State; ``on``/``off`` actions."""

    def __init__(self, trl: str, name: str = "") -> None:
        with self.add_children_as_readables(Format.HINTED_SIGNAL):
            self.high_pressure = _readable(float, trl, "HighPressure")
            self.low_pressure = _readable(float, trl, "LowPressure")
        with self.add_children_as_readables():
            self.helium_temperature = _readable(float, trl, "HeliumTemperature")
            self.oil_temperature = _readable(float, trl, "OilTemperature")
            self.coolant_in_temperature = _readable(float, trl, "CoolantInTemperature")
            self.coolant_out_temperature = _readable(float, trl, "CoolantOutTemperature")
            self.motor_current = _readable(float, trl, "MotorCurrent")
            self.operating_state_code = _readable(int, trl, "OperatingStateCode")
            self.warnings = _readable(str, trl, "WarningsText")
            self.alarms = _readable(str, trl, "AlarmsText")
            self.state = _readable(DevStateEnum, trl, "State")
        self.on = tango_triggerable_command(f"{trl}/On")
        self.off = tango_triggerable_command(f"{trl}/Off")
        super().__init__(name=name)


class HeatPump(StandardReadable):
    """``RotexHPSU``: the measurements in ``values`` (attribute → int or float; attributes the
    device acquires, see its ``Commands`` property), operating mode label, error code, State; ``on``/``off`` actions."""

    def __init__(self, trl: str, values: Mapping[str, type] = HEATPUMP_VALUES, name: str = "") -> None:
        with self.add_children_as_readables():
            for attribute, datatype in values.items():
                setattr(self, attribute, _readable(datatype, trl, attribute))
            self.mode = _readable(str, trl, "mode_01_label")
            self.error = _readable(int, trl, "error")
            self.state = _readable(DevStateEnum, trl, "State")
        self.on = tango_triggerable_command(f"{trl}/On")
        self.off = tango_triggerable_command(f"{trl}/Off")
        super().__init__(name=name)
