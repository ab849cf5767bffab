"""ColeParmerChiller: the Tango face of a Cole-Parmer / NESLAB chiller (thin: tables + state map)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from tango import DevState
from tango.server import command, device_property

from ...server.base import REASON_REFUSED, PlantDevice, fail
from ...server.schema import Attr, joined
from . import protocol
from .driver import NcDriver


class Kind(NamedTuple):
    """What a parameter's values are: Tango unit and format, and the write range the device
    enforces (the Tango DB's min_value/max_value may narrow it, never widen it)."""

    unit: str
    format: str
    low: float
    high: float


# A range wide enough for every family (EX heating circulators reach 200 °C); the chiller
# limits to its own, narrower range and the write then reports the value it stored.
TEMPERATURE = Kind("degC", "%.2f", -50.0, 200.0)
# PID ranges of the manuals (docs/neslab-nc.md §5); they are unitless numbers on the front panel.
PROPORTIONAL = Kind("", "%.1f", 0.1, 99.9)
INTEGRAL = Kind("", "%.2f", 0.0, 9.99)
DERIVATIVE = Kind("", "%.1f", 0.0, 5.0)

# Tango attribute → (kind, label, description). Which ones a device offers, and which are
# writable, is the family's table (protocol.FAMILIES).
PARAMETERS = {
    "InternalTemperature": (TEMPERATURE, "Bath temperature",
                            "Internal probe (RTD1); ThermoFlex: supply temperature"),
    "ExternalTemperature": (TEMPERATURE, "External temperature",
                            "External probe (RTD2); ThermoFlex: return temperature"),
    "Setpoint": (TEMPERATURE, "Set point",
                 "Control set point; a write returns once the chiller echoed the value it stored"),
    "LowTemperatureWarning": (TEMPERATURE, "Low temperature warning",
                              "Low temperature limit (RTE/EX/Merlin: warns or faults per fault mode)"),
    "HighTemperatureWarning": (TEMPERATURE, "High temperature warning",
                               "High temperature limit (RTE/EX/Merlin: warns or faults per fault mode)"),
    "LowTemperatureFault": (TEMPERATURE, "Low temperature fault", "Low temperature fault limit"),
    "HighTemperatureFault": (TEMPERATURE, "High temperature fault", "High temperature fault limit"),
    "HeatProportionalBand": (PROPORTIONAL, "Heat P", "Heating proportional band"),
    "HeatIntegral": (INTEGRAL, "Heat I", "Heating integral term"),
    "HeatDerivative": (DERIVATIVE, "Heat D", "Heating derivative term"),
    "CoolProportionalBand": (PROPORTIONAL, "Cool P", "Cooling proportional band"),
    "CoolIntegral": (INTEGRAL, "Cool I", "Cooling integral term"),
    "CoolDerivative": (DERIVATIVE, "Cool D", "Cooling derivative term"),
}
TEMPERATURES = frozenset(name for name, (kind, *_) in PARAMETERS.items() if kind is TEMPERATURE)

# Read Status booleans (the family's table says which ones it reports).
BOOLEANS = {
    "UnitOn": ("Unit on", "The chiller is running"),
    "PumpOn": ("Pump on", "The circulation pump is running"),
    "CompressorOn": ("Compressor on", "The refrigeration compressor is running"),
    "HeaterOn": ("Heater on", "The heater is on"),
}

STATUS = (
    Attr("StatusFlags", (str,), "Status flags",
         "Names of the status bits that are set; a bit the manual does not name reads by "
         "position, e.g. 'd2 b.3'", options={"max_dim_x": 40}),
    Attr("StatusRaw", str, "Status bytes",
         "Read Status data bytes as received (hex, d1 first), for bits still to be named"),
    Attr("Precision", float, "Precision",
         "Resolution the chiller uses for temperatures (1, 0.1 or 0.01 degree); writes are "
         "encoded at it", format="%g"),
    Attr("TemperatureUnit", str, "Chiller temperature unit",
         "Unit in the chiller's replies: degC, degF, or empty (RTE/EX/Merlin send none)"),
    joined("StatusFlagsText", "StatusFlags", "Status flags", "The status bits that are set, comma separated"),
    Attr("AtSetpoint", bool, "At set point",
         "The bath temperature has been within SetpointTolerance of the set point for "
         "SetpointHoldTime (evaluated at each refresh; change events)"),
)
# Memorized so the DB keeps the operator's last set point and clients see it as the write value
# after a restart, but never hw_memorized: a server restart must not push a possibly stale set
# point into a running process; the chiller keeps its own set point through power cycles and is
# read back every cycle.
MEMORIZED = {"Setpoint": {"memorized": True, "hw_memorized": False}}

# Units in which the chiller's numbers are shown as degC. RTE, EX and Merlin send no unit in
# their qualifier; their display is in °C unless changed in the setup loop (README).
CELSIUS = ("degC", "")


class ColeParmerChiller(PlantDevice):
    """Cole-Parmer Polystat / Thermo NESLAB RTE, EX, ThermoFlex, Merlin over the NC protocol."""

    Family = device_property(
        dtype=str, default_value="Polystat", doc=f"One of {', '.join(protocol.FAMILIES)}"
    )
    Address = device_property(dtype=int, default_value=1, doc="Unit address (RS-232: 1; RS-485: 1-100)")
    Bus = device_property(
        dtype=str, default_value="RS232", doc="RS232 (lead byte CA) or RS485 (lead byte CC)"
    )
    Baudrate = device_property(dtype=int, default_value=9600, doc="Serial baud rate (8N1)")
    SlowRefreshPeriod = device_property(
        dtype=int, default_value=30000,
        doc="Period of the limit and PID reads [ms]; they are also read right after a write",
    )
    SetpointTolerance = device_property(
        dtype=float, default_value=0.5, doc="AtSetpoint: largest |bath - set point| [degC]",
    )
    SetpointHoldTime = device_property(
        dtype=float, default_value=10.0,
        doc="AtSetpoint: how long the bath must stay within the tolerance [s]",
    )

    def create_driver(self) -> NcDriver:
        if self.SlowRefreshPeriod < 0:
            raise ValueError(f"SlowRefreshPeriod {self.SlowRefreshPeriod} ms must be 0 or more")
        if self.SetpointTolerance < 0 or self.SetpointHoldTime < 0:
            raise ValueError("SetpointTolerance and SetpointHoldTime must be 0 or more")
        self._settling = Settling()
        return NcDriver(
            self.Url,
            family=self.Family,
            address=self.Address,
            bus=self.Bus,
            baudrate=self.Baudrate,
            timeout=self.Timeout,
            retries=self.Retries,
            slow_refresh_s=self.SlowRefreshPeriod / 1000.0,
        )

    def attribute_schema(self) -> list[Attr]:
        family = protocol.FAMILIES.get(self.Family)
        if family is None:  # init_device has put the configuration error in State/Status
            return []
        schema = []
        for name, parameter in family.parameters.items():
            kind, label, doc = PARAMETERS[name]
            writable = parameter.set is not None
            schema.append(Attr(name, float, label, doc, unit=kind.unit, format=kind.format,
                               write_range=(kind.low, kind.high) if writable else None,
                               options=MEMORIZED.get(name, {}) if writable else {}))
        schema += [Attr(name, bool, *BOOLEANS[name]) for name in family.booleans]
        return schema + list(STATUS)

    def snapshot_value(self, key: str) -> tuple[Any, float, bool]:
        """Temperatures in a unit other than °C are withheld rather than shown as degC."""
        if key == "AtSetpoint":
            return self._at_setpoint()
        value, stamp, valid = super().snapshot_value(key)
        if valid and key in TEMPERATURES and not self._celsius():
            valid = False
        return value, stamp, valid

    def _at_setpoint(self) -> tuple[bool | None, float, bool]:
        bath, stamp, valid = self.snapshot_value("InternalTemperature")
        setpoint, _, setpoint_valid = self.snapshot_value("Setpoint")
        if not (valid and setpoint_valid):
            self._settling = Settling()
            return None, stamp, False
        self._settling = self._settling.update(bath, setpoint, stamp, self.SetpointTolerance)
        return self._settling.held(stamp, self.SetpointHoldTime), stamp, True

    def _celsius(self) -> bool:
        unit = self.worker.snapshot.values.get("TemperatureUnit") if self.worker else None
        return unit is None or unit in CELSIUS

    # ---- writes ------------------------------------------------------------------------------
    def write_value(self, name: str, value: float) -> float:
        """Validate, then set through the worker; the chiller's echo is what the attribute reads
        as soon as the write returns."""
        self.check_writable(f"write {name}")
        value = self.checked_value(name, value)
        if name in TEMPERATURES and not self._celsius():
            unit = self.worker.snapshot.values["TemperatureUnit"]
            fail(REASON_REFUSED, (
                f"write {name} refused: the chiller works in {unit} and this device in degC. "
                "Set the chiller's temperature unit to degC; nothing was sent."
            ))
        return self.run_on_instrument(f"write {name}", lambda drv: drv.write(name, value))

    # ---- State / Status ----------------------------------------------------------------------
    def instrument_state(self, values: dict) -> tuple[DevState, str]:
        family = self.worker.driver.family
        flags = values.get("StatusFlags") or []
        conditions = [f for f in flags if not _is_state_bit(family, f)]
        unit = values.get("TemperatureUnit")
        if unit is not None and unit not in CELSIUS:
            return DevState.FAULT, (
                f"The chiller reports temperatures in {unit}; this device shows degC. Set "
                "the chiller's temperature unit to degC (temperatures are withheld until then)."
            )
        if values.get("StatusSeverity") == protocol.FAULT:
            return DevState.FAULT, (
                f"Chiller fault: {', '.join(conditions) or 'no detail reported'}. Correct the "
                "cause and clear the fault at the chiller, then start it with On."
            )
        running = values.get("UnitOn")
        if running is None:
            return DevState.UNKNOWN, "The chiller's status could not be decoded"
        temperatures = self._temperatures_text(values)
        if values.get("StatusSeverity") == protocol.WARNING:
            return DevState.ALARM, (
                f"Chiller {'running' if running else 'stopped'} with warnings: "
                f"{', '.join(conditions)}; {temperatures}"
            )
        if running:
            return DevState.ON, f"Chiller running, {temperatures}"
        return DevState.OFF, f"Chiller stopped, {temperatures}; On starts it"

    @staticmethod
    def _temperatures_text(values: dict) -> str:
        decimals = max(0, round(-math.log10(values.get("Precision") or 0.1)))
        parts = [
            f"{label} {values[name]:.{decimals}f} degC"
            for name, label in (("InternalTemperature", "bath"), ("Setpoint", "set point"))
            if values.get(name) is not None
        ]
        return ", ".join(parts) or "temperatures not available"

    # ---- commands ----------------------------------------------------------------------------
    @command(doc_in="Start the chiller (Set On/Off array, unit byte only); returns once its reply "
                    "shows the unit on")
    def On(self) -> None:
        self.run_on_instrument("On", lambda drv: _unit_state(drv.set_on(True)))

    @command(doc_in="Stop the chiller (Set On/Off array, unit byte only); returns once its reply "
                    "shows the unit off")
    def Off(self) -> None:
        self.run_on_instrument("Off", lambda drv: _unit_state(drv.set_on(False)))

    @command(
        dtype_in=float, doc_in="Set point in degC (same checks and path as writing Setpoint)",
        dtype_out=float, doc_out="The set point the chiller stored",
    )
    def SetSetpoint(self, value: float) -> float:
        return self.write_value("Setpoint", value)


def _unit_state(settings: dict[str, bool]) -> str:
    """What LastCommandResult says of a Set On/Off reply."""
    return f"chiller reports unit {'on' if settings['unit on'] else 'off'}"


class Settling(NamedTuple):
    """Since when (acquisition time) the bath has been within tolerance of ``setpoint``; a new
    set point starts the hold again, so a small step still waits for the bath to settle."""

    setpoint: float | None = None
    since: float | None = None

    def update(self, bath: float, setpoint: float, stamp: float, tolerance: float) -> "Settling":
        if abs(bath - setpoint) > tolerance:
            return Settling(setpoint, None)
        if self.since is None or setpoint != self.setpoint:
            return Settling(setpoint, stamp)
        return self

    def held(self, stamp: float, hold_s: float) -> bool:
        return self.since is not None and stamp - self.since >= hold_s


def _is_state_bit(family: protocol.Family, name: str) -> bool:
    try:
        return family.bit(name).kind == protocol.STATE
    except ValueError:  # reported by position: an unnamed bit may be a fault's detail
        return False
