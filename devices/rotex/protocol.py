"""Rotex HPSU CAN telegrams (Elster style): addressing, requests, reply matching, value codec.

Pure: frames in, values out; no bus, no clock, no threads. The facts are in
``docs/rotex-hpsu-can.md``; section numbers below refer to it.

A telegram travels in a classic 11-bit CAN frame whose arbitration id is the *sender*. The
*target* and the message type are packed into data bytes 0-1 (§2)::

    byte0 = ((target >> 7) & 0x0F) << 4 | type     byte1 = target & 0x7F
    byte2 = index (< 0xFA), or 0xFA and a 16-bit index in bytes 3-4
    value = big-endian 16 bits in bytes 3-4 (short index) or 5-6 (0xFA form)

Values: signed words use two's complement; 0x8000 is the "no value" word, and on unsigned words
so is 0xFFFF (a 65535 l/h flow and a 32768 kWh counter have been seen in the field). On a signed
word 0xFFFF is just -1 raw (-0.1 degC), a reading like any other, so it stays valid there.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .table import DISPLAY_ADDRESS, Command

MSG_WRITE = 0
MSG_READ = 1
MSG_RESPONSE = 2

FA = 0xFA           # byte 2 marker of the extended (16-bit) index form
FRAME_LENGTH = 7    # every telegram we send or accept as a reply

_SIGNED_INVALID = frozenset({0x8000})
_UNSIGNED_INVALID = frozenset({0x8000, 0xFFFF})


def address_bytes(target: int, msg_type: int) -> tuple[int, int]:
    """Bytes 0-1 of a telegram for ``target`` (11-bit address) and ``msg_type`` (0..15)."""
    if not 0 <= target <= 0x7FF:
        raise ValueError(f"target 0x{target:X} is not an 11-bit CAN address (0..0x7FF)")
    if not 0 <= msg_type <= 0x0F:
        raise ValueError(f"message type {msg_type} does not fit in a nibble (0..15)")
    return ((target >> 7) & 0x0F) << 4 | msg_type, target & 0x7F


def node_of_request_bytes(b0: int, b1: int) -> int:
    """The target address encoded in bytes 0-1 (the type nibble is ignored)."""
    return ((b0 >> 4) & 0x0F) << 7 | (b1 & 0x7F)


@dataclass(frozen=True)
class Telegram:
    """One decoded frame, whoever sent it and whatever it means."""

    sender: int         # the CAN arbitration id
    target: int
    msg_type: int       # MSG_WRITE, MSG_READ, MSG_RESPONSE, or anything else seen on the bus
    index: int
    fa: bool            # index carried in the 0xFA form
    value: int | None   # raw 16-bit word; None when the frame stops before it


def parse_telegram(arbitration_id: int, data: bytes) -> Telegram:
    """Split a received frame into its fields; ValueError if it cannot be a telegram."""
    data = bytes(data)
    if not 0 <= arbitration_id <= 0x7FF:
        raise ValueError(f"arbitration id 0x{arbitration_id:X} is not an 11-bit CAN id")
    if len(data) > 8:
        raise ValueError(f"a classic CAN frame carries at most 8 data bytes, got {len(data)}")
    if len(data) < 3:
        raise ValueError(f"telegram too short: {len(data)} bytes, need at least 3")
    fa = data[2] == FA
    if fa and len(data) < 5:
        raise ValueError(f"0xFA-form telegram too short: {len(data)} bytes, need at least 5")
    index, position = _index_and_position(data)
    value = _word_at(data, position) if len(data) >= position + 2 else None
    return Telegram(sender=arbitration_id, target=node_of_request_bytes(data[0], data[1]),
                    msg_type=data[0] & 0x0F, index=index, fa=fa, value=value)


def encode_telegram(target: int, msg_type: int, index: int, value: int = 0,
                    fa: bool | None = None) -> bytes:
    """A 7-byte telegram; ``fa=None`` picks the short form whenever the index allows it.

    ``value`` is a raw word, -0x8000..0xFFFF (negatives are stored in two's complement).
    """
    if not 0 <= index <= 0xFFFF:
        raise ValueError(f"index 0x{index:X} does not fit in 16 bits")
    if not -0x8000 <= value <= 0xFFFF:
        raise ValueError(f"raw value {value} does not fit in 16 bits")
    if fa is None:
        fa = index >= FA
    if not fa and index >= FA:
        raise ValueError(f"index 0x{index:X} needs the 0xFA form (short form is below 0xFA)")
    b0, b1 = address_bytes(target, msg_type)
    word = value & 0xFFFF
    if fa:
        return bytes((b0, b1, FA, index >> 8, index & 0xFF, word >> 8, word & 0xFF))
    return bytes((b0, b1, index, word >> 8, word & 0xFF, 0, 0))


def encode_read(cmd: Command) -> bytes:
    """The read request for ``cmd``: always 7 bytes, value 00 00 (§3).

    The sender is not in the data: it is the arbitration id the transport sends with.
    """
    return encode_telegram(cmd.node, MSG_READ, cmd.index, 0, fa=cmd.form == "fa")


def match_response(cmd: Command, own_id: int, arbitration_id: int, data: bytes) -> bool:
    """True only for the reply to our read of ``cmd`` (§4.2).

    The busy bus carries the display's polling (0x10A), other clients' requests for the same
    index (type 1, value 00 00 - taking one as the answer reads a false zero) and replies meant
    for others; all of them are refused. The reply may use either index form.
    """
    _check_own_id(own_id)
    if len(data) != FRAME_LENGTH or arbitration_id != cmd.node:
        return False
    b0, b1 = data[0], data[1]
    if b0 & 0x0F != MSG_RESPONSE:
        return False
    if b0 >> 4 != (own_id >> 7) & 0x0F or b1 != own_id & 0x7F:
        return False
    return _index_and_position(data)[0] == cmd.index


def decode_value(cmd: Command, data: bytes) -> float | int | None:
    """The engineering value carried by a telegram for ``cmd``; None for a "no value" word."""
    if len(data) < 3:
        raise ValueError(f"{cmd.name}: telegram too short: {len(data)} bytes")
    position = 5 if data[2] == FA else 3
    if len(data) < position + 2:
        raise ValueError(f"{cmd.name}: telegram too short for its value: {len(data)} bytes, "
                         f"need {position + 2}")
    return decode_word(cmd, _word_at(data, position))


def decode_word(cmd: Command, word: int) -> float | int | None:
    """Scale a raw 16-bit word of ``cmd`` into engineering units (None: no value)."""
    if not 0 <= word <= 0xFFFF:
        raise ValueError(f"{cmd.name}: raw word {word} does not fit in 16 bits")
    if cmd.type == "int":
        # One-byte parameters (mode_01: 03 00 = heat) sit in the high byte.
        raw = _from_twos(word >> 8, 8) if cmd.signed else word >> 8
        return _round_half_away(raw / cmd.divisor)
    if word in (_SIGNED_INVALID if cmd.signed else _UNSIGNED_INVALID):
        return None
    raw = _from_twos(word, 16) if cmd.signed else word
    if cmd.type == "value":
        if cmd.mask is not None:
            return (raw & cmd.mask) >> _shift(cmd.mask)
        return raw
    if cmd.type == "longint":
        return _round_half_away(raw / cmd.divisor)
    return float(round(raw / cmd.divisor, decimals(cmd)))


def encode_value(cmd: Command, value: float | int | str) -> int:
    """The raw 16-bit word for ``value`` (engineering units, or a value-code label).

    Checks everything but the writable flag, so the simulator can build replies with it.
    For a bit-field view the word holds only that view's bits.
    """
    if isinstance(value, str):
        if value not in cmd.value_codes:
            raise ValueError(f"{cmd.name}: unknown label {value!r}; "
                             f"valid labels: {', '.join(cmd.value_codes) or 'none'}")
        raw = cmd.value_codes[value]
    else:
        if not isinstance(value, numbers.Real):
            raise ValueError(f"{cmd.name}: {value!r} is neither a number nor a label")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{cmd.name}: {value!r} is not a finite number")
        unit = f" {cmd.unit}" if cmd.unit else ""
        if cmd.min is not None and number < cmd.min:
            raise ValueError(f"{cmd.name}: {value}{unit} is below the minimum {cmd.min}{unit}")
        if cmd.max is not None and number > cmd.max:
            raise ValueError(f"{cmd.name}: {value}{unit} is above the maximum {cmd.max}{unit}")
        scaled = number * cmd.divisor
        if not math.isfinite(scaled):
            raise ValueError(f"{cmd.name}: {value!r} overflows once scaled")
        raw = _round_half_away(scaled)
        # A code is taken exactly or not at all: rounding 3.5 to 4 would switch mode_01 to
        # "reduced" when nobody asked for it.
        if cmd.value_codes and (raw != scaled or raw not in cmd.value_codes.values()):
            codes = ", ".join(f"{label}={code}" for label, code in cmd.value_codes.items())
            raise ValueError(f"{cmd.name}: {value} is not one of its codes ({codes})")
    low, high, shift = _raw_limits(cmd)
    if not low <= raw <= high:
        raise ValueError(f"{cmd.name}: raw value {raw} is outside the range {low}..{high} "
                         f"that its {cmd.type} word can carry")
    return (raw << shift) & 0xFFFF


def encode_write(cmd: Command, value: float | int | str) -> bytes:
    """The write telegram for ``cmd``: type 0, 0xFA form, full 16-bit value (§6.1).

    Zero is a value like any other (pyHPSU sent a read for it). ValueError, before anything is
    built, for a read-only command, a non-finite value, a value outside min/max or the word.
    """
    if not cmd.writable:
        raise ValueError(f"{cmd.name} is read-only")
    word = encode_value(cmd, value)
    return encode_telegram(cmd.node, MSG_WRITE, cmd.index, word, fa=True)


def write_range(cmd: Command) -> tuple[float, float]:
    """(lowest, highest) value a write of ``cmd`` may carry, in engineering units: the table's
    min/max within what its word can carry, or the lowest and highest of its value codes.

    For a coded command this is only the envelope; :func:`encode_value` also refuses the
    numbers in between that are not codes.
    """
    if cmd.value_codes:
        codes = [code / cmd.divisor for code in cmd.value_codes.values()]
        return min(codes), max(codes)
    low, high, _ = _raw_limits(cmd)
    low, high = low / cmd.divisor, high / cmd.divisor
    if cmd.min is not None:
        low = max(low, cmd.min)
    if cmd.max is not None:
        high = min(high, cmd.max)
    return low, high


def label_for(cmd: Command, raw: int | None) -> str | None:
    """The value-code label of a decoded code, or None if it has none."""
    if raw is None:
        return None
    for label, code in cmd.value_codes.items():
        if code == raw:
            return label
    return None


def _check_own_id(own_id: int) -> None:
    if not 0 <= own_id <= 0x7FF:
        raise ValueError(f"own address 0x{own_id:X} is not an 11-bit CAN address")
    if own_id == DISPLAY_ADDRESS:
        raise ValueError("own address 0x10A is the RoCon display's; choose another")


def _index_and_position(data: bytes) -> tuple[int, int]:
    """(index, position of the value) for a frame of at least 3 (short) or 5 (FA) bytes."""
    if data[2] == FA:
        return data[3] << 8 | data[4], 5
    return data[2], 3


def _word_at(data: bytes, position: int) -> int:
    return data[position] << 8 | data[position + 1]


def _raw_limits(cmd: Command) -> tuple[int, int, int]:
    """(lowest raw, highest raw, left shift) that a write of ``cmd`` may carry.

    16-bit words stop at 0x7FFF (a full signed word, §6.1) and never produce a "no value"
    word, so whatever we write reads back as the same number.
    """
    if cmd.type == "int":
        return (-0x80, 0x7F, 8) if cmd.signed else (0, 0xFF, 8)
    if cmd.mask is not None:
        shift = _shift(cmd.mask)
        return 0, cmd.mask >> shift, shift
    return (-0x7FFF, 0x7FFF, 0) if cmd.signed else (0, 0x7FFF, 0)


def _shift(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


def _from_twos(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw >> (bits - 1) else raw


def _round_half_away(x: float) -> int:
    """Round to nearest, halves away from zero: 28.999... -> 29, 2.5 -> 3, -2.5 -> -3."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def decimals(cmd: Command) -> int:
    """Decimal places of the resolution 1/divisor: 10 -> 1, 1000 -> 3, 1 or 0.1 -> 0."""
    return max(0, math.ceil(math.log10(cmd.divisor) - 1e-9))
