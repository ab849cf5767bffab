"""CryomechCPA: the Tango face of a Cryomech CPA helium compressor (thin: table + state map)."""

from __future__ import annotations

from tango import DevState
from tango.server import command, device_property

from ...server.base import PlantDevice
from ...server.schema import Attr, joined
from . import protocol
from .driver import CpaDriver

# CPA1114 error/warning set points (PT420 §7.7.7), in the manual's own units (psig, degF):
# (min_alarm, min_warning, max_warning, max_alarm); None where the manual gives none or where a
# limit would alarm on normal idle readings (ΔP is slightly negative when stopped; the motor
# current reads near zero when idle).
CPA1114_LIMITS_PSI_DEGF = {
    "CoolantInTemperature": (40, 45, 85, 110),
    "CoolantOutTemperature": (40, 45, 110, 125),
    "OilTemperature": (40, 45, 110, 125),
    "HeliumTemperature": (40, 45, 170, 190),
    "HighPressure": (150, 170, 375, 400),
    "HighPressureAverage": (150, 170, 375, 400),
    "LowPressure": (40, 50, 240, 250),
    "LowPressureAverage": (40, 50, 240, 250),
    "DeltaPressureAverage": (None, None, 275, 400),
}

# name → (kind, label, description); kind picks the unit and format.
ANALOG = {
    "CoolantInTemperature": ("temperature", "Coolant in", "Cooling water temperature at the inlet"),
    "CoolantOutTemperature": ("temperature", "Coolant out", "Cooling water temperature at the outlet"),
    "OilTemperature": ("temperature", "Oil", "Oil temperature"),
    "HeliumTemperature": ("temperature", "Helium", "Helium discharge temperature"),
    "LowPressure": ("pressure", "Low pressure", "Return (low side) gauge pressure"),
    "LowPressureAverage": ("pressure", "Low pressure avg", "Return gauge pressure, panel average"),
    "HighPressure": ("pressure", "High pressure", "Supply (high side) gauge pressure"),
    "HighPressureAverage": ("pressure", "High pressure avg", "Supply gauge pressure, panel average"),
    "DeltaPressureAverage": (
        "pressure",
        "Delta pressure avg",
        "High minus low pressure, panel average (slightly negative when stopped)",
    ),
    "MotorCurrent": ("current", "Motor current", "Current of one phase of the compressor motor"),
    "HoursOfOperation": ("hours", "Hours of operation", "Running hours counted by the panel"),
}
FIXED_UNITS = {"current": ("A", "%.1f"), "hours": ("h", "%.1f")}
FORMATS = {"temperature": "%.1f", "pressure": "%.2f"}

STATUS = (
    Attr("OperatingState", str, "Operating state",
         "Label of the panel's operating state (register 30001): "
         + ", ".join(dict.fromkeys(protocol.STATE_LABELS)) + "; the code is OperatingStateCode"),
    Attr("OperatingStateCode", int, "Operating state code", "Raw code of register 30001"),
    Attr("CompressorRunning", bool, "Compressor running", "Compressor motor energized"),
    Attr("Warnings", (str,), "Warnings", "Active warning conditions", options={"max_dim_x": 32}),
    Attr("Alarms", (str,), "Alarms", "Active alarm (error) conditions", options={"max_dim_x": 32}),
    joined("WarningsText", "Warnings", "Warnings", "Active warning conditions, comma separated"),
    joined("AlarmsText", "Alarms", "Alarms", "Active alarm (error) conditions, comma separated"),
    Attr("WarningCode", int, "Warning code", "Warning bit mask", format="0x%08X"),
    Attr("AlarmCode", int, "Alarm code", "Alarm (error) bit mask", format="0x%08X"),
    Attr("PressureScale", str, "Panel pressure scale", "Unit shown on the panel (30029)"),
    Attr("TemperatureScale", str, "Panel temperature scale", "Unit shown on the panel (30030)"),
    Attr("Model", str, "Model", "Compressor model decoded from register 30032"),
    Attr("PanelSerialNumber", int, "Panel serial number", "Register 30031"),
    Attr("SoftwareRevision", str, "Software revision", "Panel software revision"),
)

TEMPERATURE_UNITS = ("degC", "K", "degF")
PRESSURE_UNITS = ("bar", "psi", "kPa")
PANEL_FORMATS = {"auto": None, "CPA2": protocol.BLOCK_COUNT_CPA2, "CPA3": protocol.BLOCK_COUNT_CPA3}


class CryomechCPA(PlantDevice):
    """Cryomech CPA-series helium compressor over Modbus TCP or RTU."""

    UnitId = device_property(dtype=int, doc="Modbus unit id (default 1 for TCP, 16 for serial)")
    Baudrate = device_property(dtype=int, default_value=115200, doc="RTU baud rate")
    Parity = device_property(dtype=str, default_value="N", doc="RTU parity: N, E or O")
    StopBits = device_property(dtype=int, default_value=1, doc="RTU stop bits")
    TemperatureUnit = device_property(dtype=str, default_value="degC", doc="degC, K or degF")
    PressureUnit = device_property(dtype=str, default_value="bar", doc="bar, psi or kPa")
    PanelFormat = device_property(
        dtype=str, default_value="auto", doc="auto, CPA2 (53 registers) or CPA3 (55 registers)"
    )
    StopValue = device_property(
        dtype=int, default_value=0x00FF, doc="Value written to 40001 to stop (manual: 0x00FF; vendor samples: 0xFFFF)"
    )

    def create_driver(self) -> CpaDriver:
        if self.TemperatureUnit not in TEMPERATURE_UNITS:
            raise ValueError(f"TemperatureUnit {self.TemperatureUnit!r} is not one of {', '.join(TEMPERATURE_UNITS)}")
        if self.PressureUnit not in PRESSURE_UNITS:
            raise ValueError(f"PressureUnit {self.PressureUnit!r} is not one of {', '.join(PRESSURE_UNITS)}")
        if self.PanelFormat not in PANEL_FORMATS:
            raise ValueError(f"PanelFormat {self.PanelFormat!r} is not one of {', '.join(PANEL_FORMATS)}")
        return CpaDriver(
            self.Url,
            unit_id=self.UnitId,
            baudrate=self.Baudrate,
            parity=self.Parity,
            stopbits=self.StopBits,
            timeout=self.Timeout,
            retries=self.Retries,
            temperature_unit=self.TemperatureUnit,
            pressure_unit=self.PressureUnit,
            block_count=PANEL_FORMATS[self.PanelFormat],
            stop_value=self.StopValue,
        )

    def attribute_schema(self) -> list[Attr]:
        units = {"temperature": self.TemperatureUnit, "pressure": self.PressureUnit}
        analog = []
        for name, (kind, label, doc) in ANALOG.items():
            unit, fmt = FIXED_UNITS.get(kind) or (units.get(kind, ""), FORMATS[kind])
            analog.append(Attr(name, float, label, doc, unit=unit, format=fmt, unit_per_device=True,
                               defaults=self._default_limits(name, kind)))
        return analog + list(STATUS)

    def _default_limits(self, name: str, kind: str) -> dict[str, str]:
        """The CPA1114 set points converted to this device's units (the DB may override them)."""
        limits = CPA1114_LIMITS_PSI_DEGF.get(name)
        if limits is None:
            return {}
        if kind == "temperature":
            convert = lambda v: protocol.convert_temperature(v, "degF", self.TemperatureUnit)  # noqa: E731
        else:
            convert = lambda v: protocol.convert_pressure(v, "psi", self.PressureUnit)  # noqa: E731
        keys = ("min_alarm", "min_warning", "max_warning", "max_alarm")
        return {k: f"{convert(v):.2f}" for k, v in zip(keys, limits) if v is not None}

    # ---- State / Status ----------------------------------------------------------------------
    def instrument_state(self, values: dict) -> tuple[DevState, str]:
        code = values.get("OperatingStateCode")
        warnings = ", ".join(values.get("Warnings") or ())
        alarms = ", ".join(values.get("Alarms") or ())
        if code is None:
            return DevState.UNKNOWN, "The panel's operating state could not be decoded"
        if code == 6:
            return DevState.FAULT, (
                "Error lockout (6 errors within one hour). Clear the lockout in the panel's lockout "
                "menu, wait the 30-minute cool-down, then start again."
                + (f" Errors: {alarms}." if alarms else "")
            )
        if code in (7, 9) or (alarms and code not in (2, 3)):
            kind = "Power related error" if code == 9 else "Error"
            return DevState.FAULT, (
                f"{kind}: {alarms or 'no condition reported'}. Correct the cause; the error is latched "
                "until reset at the panel or by a start request."
            )
        if code == 8:
            return DevState.FAULT, (
                "Helium over-temperature cool-down: the panel holds a forced off-time; a start request "
                "waits until its countdown ends."
            )
        if code in (2, 5):
            return DevState.MOVING, "Compressor starting" if code == 2 else "Compressor stopping"
        if code in (15, 16):
            return DevState.ALARM, "Panel recovering from an error; check Alarms before starting"
        if code not in (0, 3):
            return DevState.ALARM, f"The panel reports an undocumented operating state code {code}"
        running = code == 3
        if alarms:  # latched errors normally stop it; say so if the panel still runs
            return DevState.ALARM, f"Compressor running with alarms: {alarms}"
        if warnings:
            return DevState.ALARM, f"Compressor {'running' if running else 'idle'} with warnings: {warnings}"
        if running:
            return DevState.ON, "Compressor running"
        return DevState.OFF, "Compressor idle, ready to start"

    # ---- commands ----------------------------------------------------------------------------
    @command(doc_in="Start the compressor (write 0x0001 to 40001); returns once the panel took the "
                    "write. MOVING until it reports Starting (one resend if not); outcome in "
                    "LastCommandResult")
    def On(self) -> None:
        self.run_on_instrument("On", lambda drv: drv.switch(True, self._state_code()))

    @command(doc_in="Stop the compressor (write StopValue to 40001); returns once the panel took the "
                    "write. MOVING until it reports Stopping/Idling; outcome in LastCommandResult")
    def Off(self) -> None:
        self.run_on_instrument("Off", lambda drv: drv.switch(False, self._state_code()))

    def _state_code(self) -> int | None:
        """The panel's state in the snapshot (at most one refresh old)."""
        return self.worker.snapshot.values.get("OperatingStateCode") if self.worker else None
