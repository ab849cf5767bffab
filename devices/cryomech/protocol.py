"""Cryomech CPA digital panel: register map and codecs. Pure: register words in, values out.

The facts are in ``docs/cryomech-cpa-modbus.md``; ``§`` numbers below
refer to its sections. Everything here works on plain 16-bit register words as they arrive from
a Modbus FC04 block read, so the same code serves Modbus TCP, RTU and the simulator.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# -- addressing (§2): manual register 3000N is at PDU address N, 40001 at PDU 1 ----------------
BLOCK_START = 1  # PDU address of 30001; index i of a block read from here is register 30001 + i
BLOCK_COUNT_CPA2 = 53  # what the vendor's CPA2 samples read (§1.4)
BLOCK_COUNT_CPA3 = 55  # ... and the CPA3 samples, which add the integer warning/alarm words
BLOCK_COUNTS = (BLOCK_COUNT_CPA2, BLOCK_COUNT_CPA3)
HOLDING_START_STOP = 1  # PDU address of holding register 40001
START = 0x0001
STOP = 0x00FF  # the manual's value, hardware-tested by third parties (§3.3)
STOP_VENDOR = 0xFFFF  # what the vendor's own samples write; some firmware may want it

# -- register map (§3) -------------------------------------------------------------------------
WORDS = {"u16": 1, "i16": 1, "f32": 2, "u32": 2}  # 32-bit types are low word first (CDAB, §4)


@dataclass(frozen=True)
class Register:
    """One input register (or 32-bit pair) of the panel."""

    name: str  # the Tango attribute name when the value is exposed as-is
    register: int  # manual (Modicon) number of the first word
    type: str  # u16 | i16 | f32 | u32
    quantity: str | None = None  # 'temperature' | 'pressure': value follows a panel scale
    divisor: int = 1  # the CPA3 integer words carry value × 10
    cpa3_only: bool = False  # only in the 55-register CPA3 format (§3.2)
    copy_of: str | None = None  # the CPA3 ×10 words repeat a float of the CPA2 part
    description: str = ""

    @property
    def pdu(self) -> int:
        return self.register - 30000

    @property
    def index(self) -> int:
        return self.register - 30001

    @property
    def words(self) -> int:
        return WORDS[self.type]


def _f32(name: str, register: int, quantity: str | None, description: str) -> Register:
    return Register(name, register, "f32", quantity, description=description)


def _x10(name: str, register: int, quantity: str | None, copy_of: str) -> Register:
    """A CPA3 integer word carrying ``copy_of`` × 10; signedness undocumented, i16 is safer."""
    return Register(name, register, "i16", quantity, 10, True, copy_of, "×10 integer copy")


TEMPERATURE, PRESSURE = "temperature", "pressure"  # Register.quantity values
REGISTERS: tuple[Register, ...] = (
    Register("OperatingStateCode", 30001, "u16", description="operating state, §5.1"),
    Register("CompressorRunning", 30002, "u16", description="0 off, 1 energized"),
    _f32("WarningFloat", 30003, None, "−(warning bits) as a float, §5.3"),
    _f32("AlarmFloat", 30005, None, "−(alarm bits) as a float, §5.3"),
    _f32("CoolantInTemperature", 30007, TEMPERATURE, "coolant (water) inlet"),
    _f32("CoolantOutTemperature", 30009, TEMPERATURE, "coolant (water) outlet"),
    _f32("OilTemperature", 30011, TEMPERATURE, "oil"),
    _f32("HeliumTemperature", 30013, TEMPERATURE, "helium discharge"),
    _f32("LowPressure", 30015, PRESSURE, "return (low side), gauge"),
    _f32("LowPressureAverage", 30017, PRESSURE, "return, averaged by the panel"),
    _f32("HighPressure", 30019, PRESSURE, "supply (high side), gauge"),
    _f32("HighPressureAverage", 30021, PRESSURE, "supply, averaged by the panel"),
    _f32("DeltaPressureAverage", 30023, PRESSURE, "HP avg − LP avg; < 0 when stopped"),
    _f32("MotorCurrent", 30025, None, "A, one phase of three"),
    _f32("HoursOfOperation", 30027, None, "running hours"),
    Register("PressureScale", 30029, "u16", description="0 psi, 1 bar, 2 kPa"),
    Register("TemperatureScale", 30030, "u16", description="0 degF, 1 degC, 2 K"),
    Register("PanelSerialNumber", 30031, "u16", description="plain big-endian u16"),
    Register("ModelCode", 30032, "u16", description="high byte series, low byte model, §5.5"),
    Register("SoftwareRevisionCode", 30033, "u16", description="high.low bytes"),
    Register("Undocumented30034", 30034, "u16", description="non-zero on real panels; unused"),
    # CPA3 format only (§3.2), derived from the vendor samples; 30036-30039 are undocumented.
    Register("SoftwareRevisionPatch", 30035, "u16", cpa3_only=True, description="high byte"),
    _x10("CoolantInTemperatureX10", 30040, TEMPERATURE, "CoolantInTemperature"),
    _x10("CoolantOutTemperatureX10", 30041, TEMPERATURE, "CoolantOutTemperature"),
    _x10("OilTemperatureX10", 30042, TEMPERATURE, "OilTemperature"),
    _x10("HeliumTemperatureX10", 30043, TEMPERATURE, "HeliumTemperature"),
    _x10("LowPressureX10", 30044, PRESSURE, "LowPressure"),
    _x10("LowPressureAverageX10", 30045, PRESSURE, "LowPressureAverage"),
    _x10("HighPressureX10", 30046, PRESSURE, "HighPressure"),
    _x10("HighPressureAverageX10", 30047, PRESSURE, "HighPressureAverage"),
    _x10("DeltaPressureAverageX10", 30048, PRESSURE, "DeltaPressureAverage"),
    _x10("MotorCurrentX10", 30049, None, "MotorCurrent"),
    Register("HoursOfOperationX10", 30050, "u32", None, 10, True, "HoursOfOperation", "h × 10"),
    Register("WarningMask", 30052, "u32", cpa3_only=True, description="+(warning bits)"),
    Register("AlarmMask", 30054, "u32", cpa3_only=True, description="+(alarm bits)"),
)
REGISTER = {r.name: r for r in REGISTERS}

# The floats the decoder exposes, in register order; the CPA3 ×10 words duplicate them.
ANALOG = tuple(
    r for r in REGISTERS if r.type == "f32" and r.name not in ("WarningFloat", "AlarmFloat")
)

# -- 16/32-bit codecs (§4) ---------------------------------------------------------------------


def _check_word(word: int) -> int:
    if not isinstance(word, int) or not 0 <= word <= 0xFFFF:
        raise ValueError(f"register word {word!r} is not an unsigned 16-bit integer (0..65535)")
    return word


def decode_f32(lo: int, hi: int) -> float:
    """IEEE-754 single from two registers, low word first (CDAB)."""
    return struct.unpack("<f", struct.pack("<HH", _check_word(lo), _check_word(hi)))[0]


def encode_f32(value: float) -> tuple[int, int]:
    """(low word, high word) of ``value`` as a float32, the panel's CDAB order."""
    try:
        lo, hi = struct.unpack("<HH", struct.pack("<f", value))
    except OverflowError:
        raise ValueError(f"{value!r} does not fit a float32 (|value| < 3.4e38)") from None
    return lo, hi


def decode_u32(lo: int, hi: int) -> int:
    return _check_word(hi) << 16 | _check_word(lo)


def encode_u32(value: int) -> tuple[int, int]:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{value!r} does not fit an unsigned 32-bit register pair (0..4294967295)")
    return value & 0xFFFF, value >> 16


def decode_i16(word: int) -> int:
    word = _check_word(word)
    return word - 0x10000 if word & 0x8000 else word


def encode_i16(value: int) -> int:
    if not -0x8000 <= value <= 0x7FFF:
        raise ValueError(f"{value!r} does not fit a signed 16-bit register (-32768..32767)")
    return value & 0xFFFF


def mask_from_float(value: float) -> int:
    """Bitmask carried by a CPA2 warning/alarm float: round(|value|); −0.0 → 0 (§4.2)."""
    if not math.isfinite(value) or abs(value) > 0xFFFFFFFF:
        raise ValueError(f"warning/alarm float {value!r} is not a 32-bit bitmask")
    return int(round(abs(value)))


# -- scales and unit conversion (§5.4) ---------------------------------------------------------
PRESSURE_SCALES = {0: "psi", 1: "bar", 2: "kPa"}
TEMPERATURE_SCALES = {0: "degF", 1: "degC", 2: "K"}
PRESSURE_UNITS = tuple(PRESSURE_SCALES.values())
TEMPERATURE_UNITS = tuple(TEMPERATURE_SCALES.values())

_BAR_PER_UNIT = {"bar": 1.0, "psi": 0.0689475729, "kPa": 0.01}
_TO_CELSIUS = {
    "degC": lambda v: v,
    "K": lambda v: v - 273.15,
    "degF": lambda v: (v - 32.0) * 5.0 / 9.0,
}
_FROM_CELSIUS = {
    "degC": lambda v: v,
    "K": lambda v: v + 273.15,
    "degF": lambda v: v * 9.0 / 5.0 + 32.0,
}


def _check_unit(unit: str, allowed: tuple[str, ...], what: str) -> str:
    if unit not in allowed:
        raise ValueError(f"unknown {what} unit {unit!r} (expected one of {', '.join(allowed)})")
    return unit


def convert_pressure(value: float, from_unit: str, to_unit: str) -> float:
    """Gauge pressure (or a pressure difference) from one unit to another."""
    _check_unit(from_unit, PRESSURE_UNITS, "pressure")
    _check_unit(to_unit, PRESSURE_UNITS, "pressure")
    if from_unit == to_unit:
        return value
    return value * _BAR_PER_UNIT[from_unit] / _BAR_PER_UNIT[to_unit]


def convert_temperature(value: float, from_unit: str, to_unit: str) -> float:
    _check_unit(from_unit, TEMPERATURE_UNITS, "temperature")
    _check_unit(to_unit, TEMPERATURE_UNITS, "temperature")
    if from_unit == to_unit:
        return value
    return _FROM_CELSIUS[to_unit](_TO_CELSIUS[from_unit](value))


def _convert(quantity: str, value: float, from_unit: str, to_unit: str) -> float:
    if quantity == TEMPERATURE:
        return convert_temperature(value, from_unit, to_unit)
    return convert_pressure(value, from_unit, to_unit)


def pressure_scale_unit(code: int) -> str:
    """Unit named by a pressure scale code (30029)."""
    if code not in PRESSURE_SCALES:
        raise ValueError(f"unknown pressure scale code {code!r} in 30029 (0 psi, 1 bar, 2 kPa)")
    return PRESSURE_SCALES[code]


def temperature_scale_unit(code: int) -> str:
    """Unit named by a temperature scale code (30030)."""
    if code not in TEMPERATURE_SCALES:
        raise ValueError(f"unknown temperature scale code {code!r} in 30030 (0 degF, 1 degC, 2 K)")
    return TEMPERATURE_SCALES[code]


# -- operating state (§5.1) --------------------------------------------------------------------
STATE_NAMES = {  # MAN p.20 labels; 15 from the vendor samples
    0: "Idling - ready to start",
    2: "Starting",
    3: "Running",
    5: "Stopping",
    6: "Error lockout",
    7: "Error",
    8: "Helium cool down",
    9: "Error - power related",
    15: "Recovered from error",
    16: "Error recovery",
}
UNKNOWN_STATE_INDEX = 17
# Labels of the OperatingState string attribute: index = code for 0..16, one last label for any
# other code. Single identifier-like words, unique (hence the code in the undefined ones), so a
# client can still build an enumeration from them.
STATE_LABELS: list[str] = [
    "IdlingReadyToStart",
    "Undefined1",
    "Starting",
    "Running",
    "Undefined4",
    "Stopping",
    "ErrorLockout",
    "Error",
    "HeliumCoolDown",
    "ErrorPowerRelated",
    *(f"Undefined{code}" for code in range(10, 15)),
    "RecoveredFromError",
    "ErrorRecovery",
    "UnknownCode",
]

IDLE, STARTING, RUNNING, STOPPING = 0, 2, 3, 5
LOCKOUT, ERROR, HELIUM_COOL_DOWN, POWER_ERROR = 6, 7, 8, 9
STARTING_OR_RUNNING = frozenset({STARTING, RUNNING})
STOPPING_OR_IDLE = frozenset({STOPPING, IDLE})
# 8 (helium over-temperature cool-down) keeps the compressor off with a forced wait: a fault for
# the operator even though it ends by itself.
FAULT_CODES = frozenset({LOCKOUT, ERROR, HELIUM_COOL_DOWN, POWER_ERROR})
RECOVERY_CODES = frozenset({15, 16})  # sources disagree on which; treated alike (§5.1)


def state_enum_index(code: int) -> int:
    """Index into :data:`STATE_LABELS` for a raw state code; never raises."""
    if isinstance(code, int) and 0 <= code < UNKNOWN_STATE_INDEX:
        return code
    return UNKNOWN_STATE_INDEX


def state_label(code: int) -> str:
    """Words for a raw state code, including codes no source defines."""
    return STATE_NAMES.get(code, f"unknown state code {code}")


# -- warning and alarm bits (§5.3) -------------------------------------------------------------
WARNING_BITS: tuple[str, ...] = (
    "Coolant in temperature high",  # bit 0
    "Coolant in temperature low",
    "Coolant out temperature high",
    "Coolant out temperature low",
    "Oil temperature high",
    "Oil temperature low",
    "Helium temperature high",
    "Helium temperature low",
    "Low pressure high",  # bit 8 = 256
    "Low pressure low",  # bit 9 = 512
    "High pressure high",
    "High pressure low",
    "Delta pressure high",
    "Delta pressure low",
    "Motor current low",
    "Three-phase error",
    "Power supply error",
    "Static pressure high",
    "Static pressure low",
    "Cold head motor stall",  # bit 19
    "Coolant in sensor fault",  # bits 20-30: vendor samples only
    "Coolant out sensor fault",
    "Helium sensor fault",
    "Oil sensor fault",
    "High pressure sensor fault",
    "Low pressure sensor fault",
    "Motor current sensor fault",
    "Motor current high",
    "Inverter error",
    "Driver communication lost",
    "Inverter communication lost",  # bit 30
)
# The alarm word uses the same bits; only bit 19 is named differently (vendor: "Motor Stall").
ALARM_BITS: tuple[str, ...] = WARNING_BITS[:19] + ("Motor stall",) + WARNING_BITS[20:]


def _bit_names(mask: int, table: tuple[str, ...]) -> list[str]:
    if not isinstance(mask, int) or mask < 0:
        raise ValueError(f"bitmask {mask!r} is not a non-negative integer")
    return [
        table[bit] if bit < len(table) else f"Bit {bit}"
        for bit in range(mask.bit_length())
        if mask >> bit & 1
    ]


def warning_names(mask: int) -> list[str]:
    """One name per set bit of a warning mask (combined bits all listed)."""
    return _bit_names(mask, WARNING_BITS)


def alarm_names(mask: int) -> list[str]:
    return _bit_names(mask, ALARM_BITS)


# -- identity (§5.5, §5.6) ---------------------------------------------------------------------
MODEL_SERIES = {1: "08", 2: "09", 3: "10", 4: "11", 5: "28"}  # major (high byte)
MODEL_MINOR = {  # minor (low byte)
    1: "A1", 2: "01", 3: "02", 4: "03", 5: "H3", 6: "I3", 7: "04", 8: "H4",
    9: "05", 10: "H5", 11: "I6", 12: "06", 13: "07", 14: "H7", 15: "I7", 16: "08",
    17: "09", 18: "9C", 19: "10", 20: "1I", 21: "11", 22: "12", 23: "13", 24: "14",
}  # fmt: skip


def model_name(word: int) -> str:
    """Model string from 30032, e.g. 0x0418 → "CPA1114"; unknown codes → "Unknown (0x0418)"."""
    major, minor = _check_word(word) >> 8, word & 0xFF
    if major in MODEL_SERIES and minor in MODEL_MINOR:
        return f"CPA{MODEL_SERIES[major]}{MODEL_MINOR[minor]}"
    return f"Unknown (0x{word:04X})"


def model_code(name: str) -> int:
    """Inverse of :func:`model_name` for known models (used by the simulator)."""
    for major, series in MODEL_SERIES.items():
        for minor, code in MODEL_MINOR.items():
            if f"CPA{series}{code}" == name:
                return major << 8 | minor
    raise ValueError(f"unknown CPA model {name!r} (e.g. CPA1110, CPA1114, CPA289C)")


def software_revision(word: int, cpa3_word: int | None = None) -> str:
    """ "M.m" from the bytes of 30033; the CPA3 format adds ".p" from the high byte of 30035."""
    text = f"{_check_word(word) >> 8}.{word & 0xFF}"
    if cpa3_word is not None:
        text += f".{_check_word(cpa3_word) >> 8}"
    return text


def encode_software_revision(text: str) -> tuple[int, int | None]:
    """ "M.m" → (30033, None); "M.m.p" → (30033, 30035)."""
    try:
        fields = [int(f) for f in text.split(".")]
        if len(fields) not in (2, 3) or not all(0 <= f <= 255 for f in fields):
            raise ValueError
    except ValueError:
        message = f"software revision {text!r} is not M.m or M.m.p (fields 0..255)"
        raise ValueError(message) from None
    word = fields[0] << 8 | fields[1]
    return word, (fields[2] << 8 if len(fields) == 3 else None)


# -- whole block -------------------------------------------------------------------------------


def _check_block(regs: Sequence[int]) -> None:
    if len(regs) not in BLOCK_COUNTS:
        raise ValueError(
            f"a CPA block read from PDU {BLOCK_START} has {BLOCK_COUNT_CPA2} (CPA2) or "
            f"{BLOCK_COUNT_CPA3} (CPA3) registers, got {len(regs)}"
        )
    for word in regs:
        _check_word(word)


def _read_pair(regs: Sequence[int], reg: Register) -> float | int:
    """Value of a two-word register (f32 or u32), low word first."""
    lo, hi = regs[reg.index], regs[reg.index + 1]
    return decode_f32(lo, hi) if reg.type == "f32" else decode_u32(lo, hi)


def has_cpa3_words(regs: Sequence[int]) -> bool:
    """Whether the CPA3 integer words of ``regs`` are meaningful.

    Rule: the block has 55 registers AND the software revision's major (high byte of 30033) is
    3 or more. A CPA2-format panel reads zeros in that area, so a long read alone proves nothing,
    and the CPA3 masks must win when present because the CPA2 floats lose bits ≥ 24 (§4.2).
    """
    return len(regs) == BLOCK_COUNT_CPA3 and regs[REGISTER["SoftwareRevisionCode"].index] >> 8 >= 3


def decode_block(
    regs: Sequence[int], temperature_unit: str = "degC", pressure_unit: str = "bar"
) -> dict[str, object]:
    """Snapshot of one block read of 53 or 55 registers from PDU 1, keyed by Tango attribute.

    Temperatures and pressures are converted from the panel scales read in this same block to
    the requested units. Raises ValueError for a wrong block length, an unknown scale code or a
    warning/alarm float that is not a number.
    """
    _check_block(regs)
    _check_unit(temperature_unit, TEMPERATURE_UNITS, "temperature")
    _check_unit(pressure_unit, PRESSURE_UNITS, "pressure")
    # The vendor samples look at the low byte of the scale words only; so do we.
    panel_units = {
        PRESSURE: pressure_scale_unit(regs[REGISTER["PressureScale"].index] & 0xFF),
        TEMPERATURE: temperature_scale_unit(regs[REGISTER["TemperatureScale"].index] & 0xFF),
    }
    wanted = {PRESSURE: pressure_unit, TEMPERATURE: temperature_unit}

    code = regs[REGISTER["OperatingStateCode"].index]
    out: dict[str, object] = {
        "OperatingState": STATE_LABELS[state_enum_index(code)],
        "OperatingStateCode": code,
        "CompressorRunning": regs[REGISTER["CompressorRunning"].index] > 0,
    }
    for reg in ANALOG:
        value = _read_pair(regs, reg)
        if reg.quantity is not None:
            value = _convert(reg.quantity, value, panel_units[reg.quantity], wanted[reg.quantity])
        out[reg.name] = value

    cpa3 = has_cpa3_words(regs)
    if cpa3:
        warnings = _read_pair(regs, REGISTER["WarningMask"])
        alarms = _read_pair(regs, REGISTER["AlarmMask"])
    else:
        warnings = mask_from_float(_read_pair(regs, REGISTER["WarningFloat"]))
        alarms = mask_from_float(_read_pair(regs, REGISTER["AlarmFloat"]))
    revision_patch = regs[REGISTER["SoftwareRevisionPatch"].index] if cpa3 else None
    out.update(
        WarningCode=warnings,
        AlarmCode=alarms,
        Warnings=warning_names(warnings),
        Alarms=alarm_names(alarms),
        PressureScale=panel_units[PRESSURE],
        TemperatureScale=panel_units[TEMPERATURE],
        Model=model_name(regs[REGISTER["ModelCode"].index]),
        PanelSerialNumber=regs[REGISTER["PanelSerialNumber"].index],
        SoftwareRevision=software_revision(
            regs[REGISTER["SoftwareRevisionCode"].index], revision_patch
        ),
    )
    return out


ENCODE_KEYS = (
    "OperatingStateCode", "CompressorRunning", "WarningCode", "AlarmCode",
    *(r.name for r in ANALOG), "PanelSerialNumber", "Model", "SoftwareRevision",
)  # fmt: skip


def encode_block(
    values: Mapping[str, object],
    *,
    cpa3: bool = False,
    pressure_scale: int = 1,
    temperature_scale: int = 1,
    temperature_unit: str = "degC",
    pressure_unit: str = "bar",
) -> list[int]:
    """Registers a panel would serve for ``values`` (the inverse of :func:`decode_block`).

    ``values`` holds every key of :data:`ENCODE_KEYS`, temperatures and pressures in the given
    units; they are written in the panel's scales. ``cpa3`` gives the 55-register format with the
    integer words; its ``SoftwareRevision`` must then be "M.m.p".
    """
    missing = [k for k in ENCODE_KEYS if k not in values]
    if missing:
        raise ValueError(f"encode_block needs values for {', '.join(missing)}")
    panel_units = {
        PRESSURE: pressure_scale_unit(pressure_scale),
        TEMPERATURE: temperature_scale_unit(temperature_scale),
    }
    given = {
        PRESSURE: _check_unit(pressure_unit, PRESSURE_UNITS, "pressure"),
        TEMPERATURE: _check_unit(temperature_unit, TEMPERATURE_UNITS, "temperature"),
    }
    regs = [0] * (BLOCK_COUNT_CPA3 if cpa3 else BLOCK_COUNT_CPA2)

    def put(name: str, *words: int) -> None:
        i = REGISTER[name].index
        regs[i : i + len(words)] = [_check_word(w) for w in words]

    warnings, alarms = int(values["WarningCode"]), int(values["AlarmCode"])
    for name, mask in (("WarningCode", warnings), ("AlarmCode", alarms)):
        if not 0 <= mask <= 0xFFFFFFFF:
            raise ValueError(f"{name} {mask} is not a 32-bit bitmask (0..4294967295)")
    put("OperatingStateCode", int(values["OperatingStateCode"]))
    put("CompressorRunning", 1 if values["CompressorRunning"] else 0)
    # The panel writes −(bits); with no bit set that is −0.0, words 0000 8000 (§4.2).
    put("WarningFloat", *encode_f32(-float(warnings)))
    put("AlarmFloat", *encode_f32(-float(alarms)))
    panel_values = {}
    for reg in ANALOG:
        value = float(values[reg.name])
        if reg.quantity is not None:
            value = _convert(reg.quantity, value, given[reg.quantity], panel_units[reg.quantity])
        panel_values[reg.name] = value
        put(reg.name, *encode_f32(value))
    put("PressureScale", pressure_scale)
    put("TemperatureScale", temperature_scale)
    put("PanelSerialNumber", int(values["PanelSerialNumber"]))
    put("ModelCode", model_code(str(values["Model"])))
    revision, patch = encode_software_revision(str(values["SoftwareRevision"]))
    put("SoftwareRevisionCode", revision)
    if cpa3 != (patch is not None):
        raise ValueError(
            f"software revision {values['SoftwareRevision']!r}: "
            "the CPA3 format has M.m.p, the CPA2 format M.m"
        )
    if cpa3:
        put("SoftwareRevisionPatch", patch)
        for reg in REGISTERS:
            if reg.copy_of is not None:
                scaled = round(panel_values[reg.copy_of] * reg.divisor)
                words = encode_u32(scaled) if reg.type == "u32" else (encode_i16(scaled),)
                put(reg.name, *words)
        put("WarningMask", *encode_u32(warnings))
        put("AlarmMask", *encode_u32(alarms))
    return regs
