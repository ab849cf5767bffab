"""Thermo NESLAB "NC" binary serial protocol: frames, values, status and families (pure).

Bytes in, values out; no I/O. Everything a family differs in (which parameters exist, the Read
Status bit layout, the Set On/Off array, the error numbering) is data in :data:`FAMILIES`.
The facts and their sources are in ``docs/neslab-nc.md``; § numbers below
refer to it.

Frame (§2)::

    Lead | Addr-MSB | Addr-LSB | Command | n | d1 … dn | Checksum
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Iterable, NamedTuple

LEADS = {"RS232": 0xCA, "RS485": 0xCC}
HEADER_LENGTH = 5  # lead, address MSB, address LSB, command, n
MAX_RS485_ADDRESS = 100

# Commands that are not parameter reads/sets (§4, §5, §7, §9).
ACKNOWLEDGE = 0x00
READ_STATUS = 0x09
ERROR_REPLY = 0x0F
SET_ON_OFF = 0x81

# Every read and set command named in §4 and §5. Families pick from these below.
READ_COMMANDS = {
    "acknowledge": 0x00,
    "software version": 0x02,  # ThermoFlex, ASCII reply
    "display message": 0x07,  # ThermoFlex, ASCII reply
    "status": 0x09,
    "process fluid flow": 0x10,
    "remote temperature": 0x1B,
    "facility inlet pressure": 0x1C,
    "facility outlet pressure": 0x1D,
    "analog level": 0x1E,
    "internal temperature": 0x20,
    "external temperature": 0x21,
    "facility water temperature": 0x23,
    "fan speed": 0x26,
    "supply pressure": 0x28,
    "suction pressure": 0x29,
    "return pressure": 0x2A,
    "condensing pressure": 0x2B,
    "resistivity": 0x2C,
    "5 V sense": 0x2F,
    "low flow warning": 0x30,
    "low flow fault": 0x32,
    "low level warning": 0x3E,
    "low level fault": 0x3F,
    "low temperature limit": 0x40,
    "low temperature fault": 0x41,
    "auto refill on level": 0x45,
    "low supply pressure warning": 0x48,
    "low supply pressure fault": 0x49,
    "low resistivity": 0x4C,
    "high flow warning": 0x50,
    "high flow fault": 0x52,  # inferred from the read|0x80 pattern (§4)
    "high level warning": 0x5E,
    "high level fault": 0x5F,
    "high temperature limit": 0x60,
    "high temperature fault": 0x61,
    "auto refill off level": 0x65,
    "high supply pressure warning": 0x68,
    "high supply pressure fault": 0x69,
    "high resistivity": 0x6C,
    "setpoint": 0x70,
    "heat P": 0x71,
    "heat I": 0x72,
    "heat D": 0x73,
    "cool P": 0x74,
    "cool I": 0x75,
    "cool D": 0x76,
}
SET_COMMANDS = {
    "keystroke": 0x80,  # ThermoFlex, n = 1
    "on/off array": 0x81,
    "special": 0x8D,  # ThermoFlex
    "low flow warning": 0xB0,
    "low flow fault": 0xB2,
    "low level warning": 0xBE,
    "low level fault": 0xBF,
    "low temperature limit": 0xC0,
    "low temperature fault": 0xC1,
    "auto refill on level": 0xC5,
    "low supply pressure warning": 0xC8,
    "low supply pressure fault": 0xC9,
    "low resistivity": 0xCC,
    "high flow warning": 0xD0,
    "high flow fault": 0xD2,
    "high level warning": 0xDE,
    "high level fault": 0xDF,
    "high temperature limit": 0xE0,
    "high temperature fault": 0xE1,
    "high supply pressure warning": 0xE8,
    "high supply pressure fault": 0xE9,
    "high resistivity": 0xEC,
    "setpoint": 0xF0,
    "heat P": 0xF1,
    "heat I": 0xF2,
    "heat D": 0xF3,
    "cool P": 0xF4,
    "cool I": 0xF5,
    "cool D": 0xF6,
}

# Unit index = low nibble of the qualifier byte (§6.1), in the project's ASCII unit strings
# (degC as the other instruments write it; Tango clients do not all decode "°" alike).
UNITS = ("", "degC", "degF", "L/min", "gal/min", "s", "psi", "bar", "MOhm*cm", "%", "V", "kPa")
# Decimal places seen in any manual are 0–2; 3 is allowed for ThermoFlex sensors. A larger high
# nibble is a corrupted qualifier, and would turn a value into a wrong one silently.
MAX_DECIMALS = 3


class FrameError(ValueError):
    """Bytes that are not a valid NC frame (or not the one expected): never use them."""


# -- framing (§2, §3) ------------------------------------------------------------------------
def checksum(body: bytes) -> int:
    """Inverted low byte of the sum of Addr-MSB … last data byte (the lead byte is excluded)."""
    return (sum(body) & 0xFF) ^ 0xFF


def lead_byte(bus: str) -> int:
    try:
        return LEADS[bus]
    except KeyError:
        raise ValueError(f"bus {bus!r} unknown: expected one of {', '.join(LEADS)}") from None


def check_address(address: int, bus: str) -> int:
    """The unit address, validated for the bus: RS-232 is always 1, RS-485 is 1–100 (§1)."""
    lead_byte(bus)
    if bus == "RS232" and address != 1:
        raise ValueError(f"address {address} invalid: an RS-232 unit always has address 1")
    if not 1 <= address <= MAX_RS485_ADDRESS:
        raise ValueError(f"address {address} invalid: RS-485 addresses are 1–{MAX_RS485_ADDRESS}")
    return address


@dataclass(frozen=True)
class Frame:
    lead: int
    address: int
    command: int
    data: bytes = b""

    def encode(self) -> bytes:
        if len(self.data) > 0xFF:
            raise ValueError(f"{len(self.data)} data bytes: a frame carries at most 255")
        body = bytes((0x00, self.address, self.command, len(self.data))) + self.data
        return bytes((self.lead,)) + body + bytes((checksum(body),))


def encode_frame(command: int, data: bytes = b"", *, address: int = 1, bus: str = "RS232") -> bytes:
    return Frame(lead_byte(bus), check_address(address, bus), command, bytes(data)).encode()


def frame_length(header: bytes) -> int:
    """Whole frame length announced by a 5-byte header: 6 + n."""
    return HEADER_LENGTH + header[4] + 1


def decode_frame(raw: bytes, *, lead: int | None = None, address: int | None = None) -> Frame:
    """Check lead, address, announced length and checksum; give the frame or raise FrameError."""
    if len(raw) < HEADER_LENGTH + 1:
        raise FrameError(f"frame of {len(raw)} bytes is shorter than the minimum 6")
    if raw[0] not in LEADS.values():
        raise FrameError(f"lead byte {raw[0]:02X} is neither CA (RS-232) nor CC (RS-485)")
    if lead is not None and raw[0] != lead:
        raise FrameError(f"lead byte {raw[0]:02X}, expected {lead:02X}")
    if raw[1] != 0x00:
        raise FrameError(f"address MSB {raw[1]:02X}, expected 00")
    if address is not None and raw[2] != address:
        raise FrameError(f"address {raw[2]}, expected {address}")
    if len(raw) != frame_length(raw):
        raise FrameError(f"frame of {len(raw)} bytes, its header announces {frame_length(raw)}")
    expected = checksum(raw[1:-1])
    if raw[-1] != expected:
        raise FrameError(f"checksum {raw[-1]:02X}, computed {expected:02X}")
    return Frame(raw[0], raw[2], raw[3], bytes(raw[HEADER_LENGTH:-1]))


class FrameSplitter:
    """The resynchronising frame reader of both ends of the line (the driver and the
    simulator): bytes in, whole frames out, as they come off the wire in any pieces.

    Bytes before a plausible header (``lead``, address MSB 00, ``address``, and whatever
    ``plausible(header)`` adds, e.g. the command asked) are dropped and counted in ``stray``;
    a frame is taken once the n + 1 bytes its header announces are there. It only cuts: the
    frame is checked by :func:`decode_frame`.
    """

    def __init__(self, lead: int, address: int, plausible: Callable[[bytes], bool] | None = None):
        self.lead, self.address = lead, address
        self._plausible = plausible or (lambda header: True)
        self.buffer = bytearray()
        self.stray = 0

    def feed(self, data: bytes = b"") -> list[bytes]:
        """Add ``data``; the whole frames now complete, in order."""
        self.buffer += data
        frames = []
        while (frame := self._take()) is not None:
            frames.append(frame)
        return frames

    def missing(self) -> int:
        """Bytes still needed to complete the frame begun in the buffer (a header's worth if
        none is begun): what a reader asks the port for, never more."""
        if len(self.buffer) < HEADER_LENGTH:
            return HEADER_LENGTH - len(self.buffer)
        return frame_length(self.buffer) - len(self.buffer)

    def clear(self) -> None:
        """Forget a partial frame (the line was quiet too long for it to be completed)."""
        self.buffer.clear()

    def _take(self) -> bytes | None:
        buffer = self.buffer
        while True:
            start = buffer.find(self.lead)
            if start < 0:
                self.stray += len(buffer)
                buffer.clear()
                return None
            if start:
                self.stray += start
                del buffer[:start]
            if len(buffer) < HEADER_LENGTH:
                return None
            header = bytes(buffer[:HEADER_LENGTH])
            if header[1] != 0x00 or header[2] != self.address or not self._plausible(header):
                self.stray += 1
                del buffer[0]
                continue
            length = frame_length(header)
            if len(buffer) < length:
                return None
            frame = bytes(buffer[:length])
            del buffer[:length]
            return frame


def read_request(command: int, *, address: int = 1, bus: str = "RS232") -> bytes:
    return encode_frame(command, address=address, bus=bus)


# -- values (§6) -----------------------------------------------------------------------------
def to_raw(value: float, decimals: int, width: int = 2) -> int:
    """value × 10^decimals, rounded half away from zero; ValueError naming the limits if it
    does not fit the signed ``width``-byte field (so nothing wrong reaches the wire)."""
    if not math.isfinite(value):
        raise ValueError(f"value {value} is not a finite number")
    # Through the decimal repr so 2.675 at 0.01 gives 268, not the binary float's 267.
    raw = int(Decimal(repr(float(value))).scaleb(decimals).quantize(Decimal(1), ROUND_HALF_UP))
    low, high = -(1 << (8 * width - 1)), (1 << (8 * width - 1)) - 1
    if not low <= raw <= high:
        step = 10.0**-decimals
        raise ValueError(
            f"value {value} cannot be sent at {step:g} precision: "
            f"the NC range is {low * step:g} … {high * step:g}"
        )
    return raw


def set_request(
    command: int,
    value: float,
    decimals: int,
    *,
    address: int = 1,
    bus: str = "RS232",
    width: int = 2,
) -> bytes:
    """A set frame: the value at the unit's precision, big-endian signed, no qualifier (§5)."""
    data = to_raw(value, decimals, width).to_bytes(width, "big", signed=True)
    return encode_frame(command, data, address=address, bus=bus)


def decode_qualifier(qb: int) -> tuple[int, str]:
    """Qualifier byte → (decimal places, unit): high nibble decimals, low nibble unit (§6.1)."""
    decimals, unit = qb >> 4, qb & 0x0F
    if decimals > MAX_DECIMALS:
        raise FrameError(f"qualifier {qb:02X} announces {decimals} decimals (at most {MAX_DECIMALS})")
    return decimals, UNITS[unit] if unit < len(UNITS) else f"unit {unit}"


def qualifier(decimals: int, unit_index: int) -> int:
    if not 0 <= decimals <= MAX_DECIMALS or not 0 <= unit_index <= 0x0F:
        raise ValueError(f"no qualifier for {decimals} decimals and unit index {unit_index}")
    return decimals << 4 | unit_index


@dataclass(frozen=True)
class Reading:
    """One value reply: qualifier + signed big-endian integer."""

    value: float
    raw: int
    decimals: int
    unit: str
    width: int  # bytes of the integer: 2, or 4 for some ThermoFlex values (§6.2)

    @property
    def precision(self) -> float:
        return 10.0**-self.decimals


def decode_reading(data: bytes, lengths: tuple[int, ...] = (3, 5)) -> Reading:
    """A value reply of one of ``lengths`` data bytes (a family's :attr:`Family.value_lengths`:
    a length the family never sends is a corrupted reply, however good its checksum)."""
    if len(data) not in lengths:
        raise FrameError(
            f"value reply with {len(data)} data bytes (expected {' or '.join(map(str, lengths))})"
        )
    decimals, unit = decode_qualifier(data[0])
    raw = int.from_bytes(data[1:], "big", signed=True)
    return Reading(raw / 10**decimals, raw, decimals, unit, len(data) - 1)


def encode_reading(raw: int, decimals: int, unit_index: int = 1, width: int = 2) -> bytes:
    """Data bytes of a value reply (what a unit sends; used by the simulator)."""
    return bytes((qualifier(decimals, unit_index),)) + raw.to_bytes(width, "big", signed=True)


# -- families ------------------------------------------------------------------------------
class Parameter(NamedTuple):
    """A Tango attribute's NC commands: read code, and set code (None when read-only)."""

    read: int
    set: int | None


class StatusBit(NamedTuple):
    byte: int  # 0 for d1
    bit: int  # 0 = LSB
    name: str
    kind: str  # FAULT, WARNING, FAULT_OR_WARNING or STATE


FAULT, WARNING, STATE = "fault", "warning", "state"
# ThermoFlex bits say "fault or warn": a fault stops the chiller, a warning lets it run, so the
# running bit tells which one it is (inference, §8.3).
FAULT_OR_WARNING = "fault or warning"

BAD_COMMAND, BAD_CHECKSUM, BAD_DATA = "bad command", "bad checksum", "bad data"


@dataclass(frozen=True)
class Family:
    name: str
    parameters: dict[str, Parameter]  # Tango attribute name → commands
    status_bits: tuple[StatusBit, ...]
    status_length: int
    booleans: dict[str, str]  # Tango attribute name → status bit name
    on_off: tuple[str, ...]  # Set On/Off array settings, d1 first (d1 is always the unit)
    on_off_lengths: tuple[int, ...]  # array lengths the firmware accepts, preferred first
    errors: dict[int, str]  # error number → BAD_COMMAND / BAD_CHECKSUM / BAD_DATA
    # Data bytes of a value reply: qualifier + 2-byte integer; ThermoFlex also sends 4-byte
    # integers for some values (§6.2).
    value_lengths: tuple[int, ...] = (3,)

    def bit(self, name: str) -> StatusBit:
        for bit in self.status_bits:
            if bit.name == name:
                return bit
        raise ValueError(f"{self.name} has no status bit {name!r}")


def _status(*rows: tuple) -> tuple[StatusBit, ...]:
    """Rows d1, d2 … each written b.7 … b.0 as in the manuals; None = unused or unknown bit."""
    return tuple(
        StatusBit(byte, 7 - position, *entry)
        for byte, row in enumerate(rows)
        for position, entry in enumerate(row)
        if entry is not None
    )


_F, _W, _FW, _S = FAULT, WARNING, FAULT_OR_WARNING, STATE  # short, for the tables

# RTE Digital Plus, RTE-DP Table 2 (§8.1). The plain "RTDn open/shorted" bits carry no fault or
# warn action of their own; a broken sensor still needs an operator, so they rank as warnings.
_RTE_STATUS = _status(
    (("RTD1 open fault", _F), ("RTD1 shorted fault", _F), ("RTD1 open", _W), ("RTD1 shorted", _W),
     ("RTD3 open fault", _F), ("RTD3 shorted fault", _F), ("RTD3 open", _W), ("RTD3 shorted", _W)),
    (("RTD2 open fault", _F), ("RTD2 shorted fault", _F), ("RTD2 open warn", _W),
     ("RTD2 shorted warn", _W), ("RTD2 open", _W), ("RTD2 shorted", _W), ("refrig high temp", _W),
     ("HTC fault", _F)),
    (("high fixed temp fault", _F), ("low fixed temp fault", _F), ("high temp fault", _F),
     ("low temp fault", _F), ("low level fault", _F), ("high temp warn", _W), ("low temp warn", _W),
     ("low level warn", _W)),
    (("buzzer on", _S), ("alarm muted", _S), ("unit faulted", _F), ("unit stopping", _S),
     ("unit on", _S), ("pump on", _S), ("compressor on", _S), ("heater on", _S)),
    (("RTD2 controlling", _S), ("heat LED flashing", _S), ("heat LED on", _S),
     ("cool LED flashing", _S), ("cool LED on", _S), None, None, None),
)

# EX (§8.2): RTE-DP's layout without RTD3, refrigeration, compressor or cooling LEDs; d2 b.1 is
# unconfirmed, so left unnamed (it would show as "d2 b.1").
_EX_STATUS = _status(
    (("RTD1 open fault", _F), ("RTD1 shorted fault", _F), ("RTD1 open", _W), ("RTD1 shorted", _W),
     None, None, None, None),
    (("RTD2 open fault", _F), ("RTD2 shorted fault", _F), ("RTD2 open warn", _W),
     ("RTD2 shorted warn", _W), ("RTD2 open", _W), ("RTD2 shorted", _W), None, ("HTC fault", _F)),
    (("high fixed temp fault", _F), ("low fixed temp fault", _F), ("high temp fault", _F),
     ("low temp fault", _F), ("low level fault", _F), ("high temp warn", _W), ("low temp warn", _W),
     ("low level warn", _W)),
    (("buzzer on", _S), ("alarm muted", _S), ("unit faulted", _F), ("unit stopping", _S),
     ("unit on", _S), ("pump on", _S), None, ("heater on", _S)),
    (("RTD2 controlling", _S), ("heat LED flashing", _S), ("heat LED on", _S),
     None, None, None, None, None),
)

# ThermoFlex "Basic" table (§8.3).
_THERMOFLEX_STATUS = _status(
    (("low temp fault or warn", _FW), ("high temp fault or warn", _FW),
     ("low temp fixed fault", _F), ("high temp fixed fault", _F), ("RTD3 open or shorted", _F),
     ("RTD2 open or shorted", _F), ("RTD1 open or shorted", _F), ("chiller running", _S)),
    (("HPC fault", _F), ("LPC fault", _F), ("motor overload fault", _F),
     ("phase monitor fault", _F), ("high level fault", _F), ("drip pan fault", _F),
     ("low pressure fault or warn", _FW), ("high pressure fault or warn", _FW)),
    (("high pressure fault (factory)", _F), ("low fixed flow warning", _W),
     ("invalid level fault", _F), ("+5 V sense fault", _F), ("low level fault", _F),
     ("low flow fault", _F), ("local EMO fault", _F), ("external EMO fault", _F)),
    (None, None, None, None, None, ("powering down", _S), ("powering up", _S),
     ("low pressure fault (factory)", _F)),
)

# Polystat / Merlin (§8.4): only b.0/b.1 of d1 are certain; the rest, and d2 (the fault's
# detail), are reported by position until read off a unit.
_POLYSTAT_STATUS = _status(
    (None, None, None, None, None, None, ("chiller faulted", _F), ("chiller running", _S)),
    (None,) * 8,
)

_RTE_ON_OFF = ("unit on", "external sensor", "faults enabled", "mute", "auto restart",
               "0.01 degC", "full-range cool", "serial comm")
# Polystat d2–d5 as in its table for later firmware (inference, §7); Merlin's are illegible.
_POLYSTAT_ON_OFF = ("unit on", "external sensor", "fault mode", "tenths display",
                    "alarms on external sensor")
_MERLIN_ON_OFF = ("unit on", "d2", "d3", "d4", "d5")

_RTE_ERRORS = {1: BAD_COMMAND, 3: BAD_CHECKSUM}
_THERMOFLEX_ERRORS = {1: BAD_COMMAND, 2: BAD_DATA, 3: BAD_CHECKSUM}
# Merlin shares the Polystat's 02950 controller firmware, so its numbering too (inference).
_POLYSTAT_ERRORS = {1: BAD_COMMAND, 2: BAD_CHECKSUM}


def _parameters(*names: str) -> dict[str, Parameter]:
    return {name: _PARAMETERS[name] for name in names}


# On RTE/EX/Merlin 40/60 are the "low/high temperature limits" (they warn or fault depending
# on the fault mode); Polystat and ThermoFlex call the same commands warnings and add faults.
_PARAMETERS = {
    "InternalTemperature": Parameter(0x20, None),  # ThermoFlex: supply temperature
    "ExternalTemperature": Parameter(0x21, None),  # ThermoFlex: return temperature
    "Setpoint": Parameter(0x70, 0xF0),
    "LowTemperatureWarning": Parameter(0x40, 0xC0),
    "HighTemperatureWarning": Parameter(0x60, 0xE0),
    "LowTemperatureFault": Parameter(0x41, 0xC1),
    "HighTemperatureFault": Parameter(0x61, 0xE1),
    "HeatProportionalBand": Parameter(0x71, 0xF1),
    "HeatIntegral": Parameter(0x72, 0xF2),
    "HeatDerivative": Parameter(0x73, 0xF3),
    "CoolProportionalBand": Parameter(0x74, 0xF4),
    "CoolIntegral": Parameter(0x75, 0xF5),
    "CoolDerivative": Parameter(0x76, 0xF6),
}
_TEMPERATURES = ("InternalTemperature", "ExternalTemperature", "Setpoint")
_LIMITS = ("LowTemperatureWarning", "HighTemperatureWarning")
_FAULT_LIMITS = ("LowTemperatureFault", "HighTemperatureFault")
_HEAT_PID = ("HeatProportionalBand", "HeatIntegral", "HeatDerivative")
_COOL_PID = ("CoolProportionalBand", "CoolIntegral", "CoolDerivative")

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="Polystat",
            parameters=_parameters(*_TEMPERATURES, *_LIMITS, *_FAULT_LIMITS, *_HEAT_PID, *_COOL_PID),
            status_bits=_POLYSTAT_STATUS,
            status_length=2,
            booleans={"UnitOn": "chiller running"},
            on_off=_POLYSTAT_ON_OFF,
            on_off_lengths=(1, 4, 5),
            errors=_POLYSTAT_ERRORS,
        ),
        # RTE 7/10/17/25 Digital Plus (an RTE 110 lacks the cool PID: those reads answer
        # "bad command").
        Family(
            name="RTE",
            parameters=_parameters(*_TEMPERATURES, *_LIMITS, *_HEAT_PID, *_COOL_PID),
            status_bits=_RTE_STATUS,
            status_length=5,
            booleans={"UnitOn": "unit on", "PumpOn": "pump on", "CompressorOn": "compressor on",
                      "HeaterOn": "heater on"},
            on_off=_RTE_ON_OFF,
            on_off_lengths=(8,),
            errors=_RTE_ERRORS,
        ),
        # EX: heating circulators, hence no cooling PID and no compressor.
        Family(
            name="EX",
            parameters=_parameters(*_TEMPERATURES, *_LIMITS, *_HEAT_PID),
            status_bits=_EX_STATUS,
            status_length=5,
            booleans={"UnitOn": "unit on", "PumpOn": "pump on", "HeaterOn": "heater on"},
            on_off=_RTE_ON_OFF,
            on_off_lengths=(8,),
            errors=_RTE_ERRORS,
        ),
        Family(
            name="ThermoFlex",
            parameters=_parameters(*_TEMPERATURES, *_LIMITS, *_FAULT_LIMITS, *_COOL_PID),
            status_bits=_THERMOFLEX_STATUS,
            status_length=4,
            booleans={"UnitOn": "chiller running"},
            on_off=("unit on",),
            on_off_lengths=(1,),
            errors=_THERMOFLEX_ERRORS,
            value_lengths=(3, 5),
        ),
        Family(
            name="Merlin",
            parameters=_parameters("InternalTemperature", "Setpoint", *_LIMITS, *_COOL_PID),
            status_bits=_POLYSTAT_STATUS,
            status_length=2,
            booleans={"UnitOn": "chiller running"},
            on_off=_MERLIN_ON_OFF,
            on_off_lengths=(1, 4, 5),
            errors=_POLYSTAT_ERRORS,
        ),
    )
}


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"family {name!r} unknown: expected one of {', '.join(FAMILIES)}") from None


# -- Read Status (§8) ----------------------------------------------------------------------
def decode_status(
    family_name: str, data: bytes
) -> tuple[list[str], dict[str, bool], str | None]:
    """Status data bytes → (active bit names, the family's booleans, 'fault'/'warning'/None).

    A set bit the table does not name is reported by position ("d2 b.3") rather than dropped.
    """
    fam = family(family_name)
    if len(data) != fam.status_length:
        raise FrameError(
            f"status reply with {len(data)} bytes; {fam.name} sends {fam.status_length}"
        )
    named = {(bit.byte, bit.bit): bit for bit in fam.status_bits}
    active: list[StatusBit | str] = [
        named.get((byte, bit), f"d{byte + 1} b.{bit}")
        for byte, value in enumerate(data)
        for bit in range(7, -1, -1)
        if value >> bit & 1
    ]
    names = {entry.name if isinstance(entry, StatusBit) else entry for entry in active}
    booleans = {attr: bit_name in names for attr, bit_name in fam.booleans.items()}
    kinds = {entry.kind for entry in active if isinstance(entry, StatusBit)}
    if FAULT_OR_WARNING in kinds:
        kinds.add(WARNING if booleans["UnitOn"] else FAULT)
    severity = FAULT if FAULT in kinds else WARNING if WARNING in kinds else None
    flags = [entry.name if isinstance(entry, StatusBit) else entry for entry in active]
    return flags, booleans, severity


def encode_status(family_name: str, names: Iterable[str]) -> bytes:
    """Status data bytes with the named bits set (what a unit sends; used by the simulator)."""
    fam = family(family_name)
    data = bytearray(fam.status_length)
    for name in names:
        bit = fam.bit(name)
        data[bit.byte] |= 1 << bit.bit
    return bytes(data)


# -- Set On/Off array (§7) -----------------------------------------------------------------
OFF, ON, NO_CHANGE = 0, 1, 2


def on_off_data(family_name: str, unit_on: bool | None, length: int | None = None) -> bytes:
    """Array that sets only the unit (d1) and leaves every other setting alone (2 = no change);
    ``unit_on=None`` asks for the settings without changing anything."""
    fam = family(family_name)
    length = fam.on_off_lengths[0] if length is None else length
    if length not in fam.on_off_lengths:
        raise ValueError(
            f"{fam.name} On/Off arrays are {', '.join(map(str, fam.on_off_lengths))} bytes, not {length}"
        )
    d1 = NO_CHANGE if unit_on is None else ON if unit_on else OFF
    return bytes((d1,)) + bytes((NO_CHANGE,)) * (length - 1)


def decode_on_off(family_name: str, data: bytes) -> dict[str, bool]:
    """Reply of a Set On/Off array: the resulting state (0/1) of each setting sent."""
    fam = family(family_name)
    if len(data) not in fam.on_off_lengths:
        raise FrameError(f"On/Off reply with {len(data)} bytes; {fam.name} uses {fam.on_off_lengths}")
    if any(value not in (OFF, ON) for value in data):
        raise FrameError(f"On/Off reply {data.hex(' ').upper()} holds values other than 0 and 1")
    return {name: value == ON for name, value in zip(fam.on_off, data)}


# -- error replies (§9) --------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorReply:
    code: int
    command: int  # the command byte as the unit received it
    kind: str | None  # BAD_COMMAND / BAD_CHECKSUM / BAD_DATA; None for a number the family lacks

    @property
    def meaning(self) -> str:
        return self.kind or f"error {self.code:02X} (not in the manual)"


def decode_error(family_name: str, data: bytes) -> ErrorReply:
    if len(data) != 2:
        raise FrameError(f"error reply with {len(data)} data bytes (expected 2)")
    return ErrorReply(data[0], data[1], family(family_name).errors.get(data[0]))


def error_code(family_name: str, kind: str) -> int:
    """The number a family uses for an error kind (the simulator's side of :func:`decode_error`);
    a family without "bad data" reports malformed data as a bad command."""
    errors = {meaning: code for code, meaning in family(family_name).errors.items()}
    return errors.get(kind, errors[BAD_COMMAND])
