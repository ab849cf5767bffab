"""The heat pump's command table: ``commands.json`` beside this file, loaded and checked.

The JSON is the source of truth (its ``notes`` explain every field and every correction made to
the pyHPSU table it was transcribed from). This module only turns it into :class:`Command`
objects and refuses a table that could put a wrong frame on the bus: a bad type, a short-form
index that does not fit in one byte, a value code that is not an integer, a duplicate address.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

TYPES = ("float", "longint", "int", "value")
FORMS = ("short", "fa")
REFRESH_CLASSES = ("fast", "slow")
UNITS = ("degC", "bar", "l/h", "kWh", "kW", "W", "%", "h", "min", "s", "")
LANGUAGES = ("en", "de", "it")

# The RoCon display polls everyone from here; a command addressed to it would be nonsense.
DISPLAY_ADDRESS = 0x10A

# Shown first in the device's default attribute list: what an operator watches.
DEFAULT_MONITORING: tuple[str, ...] = (
    "t_hs", "t_hs_set", "t_return", "t_ext", "ta2", "t_dhw", "t_dhw_set", "t_hc", "t_hc_set",
    "t_v1", "tliq2", "water_pressure", "flow_rate", "pump", "mode_01", "mode", "status_pump",
    "error", "runtime_comp", "qch", "qdhw", "heat_slope",
)

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_REQUEST = re.compile(r"[0-9A-F]{2}( [0-9A-F]{2}){4,6}\Z")
_FIELDS = ("name", "request", "node", "index", "form", "type", "divisor", "unit", "signed",
           "writable", "min", "max", "value_codes", "mask", "refresh", "labels", "descriptions")
_OPTIONAL_FIELDS = ("note",)


class TableError(ValueError):
    """commands.json is malformed; the message names the command and the field."""


@dataclass(frozen=True)
class Command:
    """One parameter of the heat pump: where it lives on the bus and how its word is scaled."""

    name: str
    node: int                   # target address (the responder), e.g. 0x180
    index: int                  # parameter index, 0..0xFFFF
    form: str                   # "short" (index in byte 2) or "fa" (0xFA + 16-bit index)
    type: str                   # float | longint | int (high byte) | value (16-bit code)
    divisor: float              # engineering value = raw / divisor
    unit: str
    signed: bool                # raw is two's complement
    writable: bool
    value_codes: dict[str, int]  # label -> raw code (after masking, for bit fields)
    min: float | None           # write limits in engineering units; None: 16-bit range
    max: float | None
    refresh: str                # "fast" | "slow"
    labels: dict[str, str]      # language -> short label
    descriptions: dict[str, str]  # language -> one sentence
    mask: int | None = None     # bits of a shared bit-field word this command reads
    request: str = ""           # pyHPSU's original read payload, for traceability
    note: str = ""              # why this entry differs from pyHPSU, if it does


def load_commands() -> dict[str, Command]:
    """All commands of the packaged table, keyed by name, in table order."""
    return {cmd.name: cmd for cmd in _packaged_commands()}


@lru_cache(maxsize=1)
def _packaged_commands() -> tuple[Command, ...]:
    text = resources.files(__package__).joinpath("commands.json").read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TableError(f"commands.json: not valid JSON: {exc}") from exc
    return tuple(parse_commands(doc).values())


def parse_commands(doc: Any) -> dict[str, Command]:
    """Validate a decoded commands.json document and build its commands."""
    if not isinstance(doc, dict) or not isinstance(doc.get("commands"), list):
        raise TableError("commands.json: expected an object with a 'commands' list")
    commands: dict[str, Command] = {}
    for position, entry in enumerate(doc["commands"]):
        cmd = _parse_command(entry, position)
        if cmd.name in commands:
            raise TableError(f"commands.json: command {cmd.name!r} is defined twice")
        commands[cmd.name] = cmd
    _check_addresses(commands.values())
    return commands


def _parse_command(entry: Any, position: int) -> Command:
    if not isinstance(entry, dict):
        raise TableError(f"commands.json: entry #{position} is not an object")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise TableError(f"commands.json: entry #{position}: 'name' must be a lower-case "
                         f"identifier, got {name!r}")

    def fail(field: str, why: str) -> TableError:
        return TableError(f"commands.json: command {name!r}: field {field!r} {why}, "
                          f"got {entry.get(field)!r}")

    missing = [f for f in _FIELDS if f not in entry]
    if missing:
        raise TableError(f"commands.json: command {name!r}: missing field(s) {missing}")
    unknown = [f for f in entry if f not in _FIELDS + _OPTIONAL_FIELDS]
    if unknown:
        raise TableError(f"commands.json: command {name!r}: unknown field(s) {unknown}")

    node = entry["node"]
    if not _is_int(node) or not 0 <= node <= 0x7FF or node == DISPLAY_ADDRESS:
        raise fail("node", "must be an 11-bit address other than the display 0x10A")
    index = entry["index"]
    if not _is_int(index) or not 0 <= index <= 0xFFFF:
        raise fail("index", "must be an integer 0..0xFFFF")
    form = entry["form"]
    if form not in FORMS:
        raise fail("form", f"must be one of {FORMS}")
    if form == "short" and index >= 0xFA:
        raise fail("index", "must be below 0xFA in short form (0xFA marks the long form)")
    typ = entry["type"]
    if typ not in TYPES:
        raise fail("type", f"must be one of {TYPES}")
    divisor = entry["divisor"]
    if not _is_number(divisor) or divisor <= 0:
        raise fail("divisor", "must be a positive number")
    if typ == "value" and divisor != 1:
        raise fail("divisor", "must be 1 for a value (code) type")
    unit = entry["unit"]
    if unit not in UNITS:
        raise fail("unit", f"must be one of {UNITS}")
    for flag in ("signed", "writable"):
        if not isinstance(entry[flag], bool):
            raise fail(flag, "must be true or false")
    codes = entry["value_codes"]
    if not isinstance(codes, dict) or not all(
            isinstance(k, str) and k.strip() and _is_int(v) for k, v in codes.items()):
        raise fail("value_codes", "must map non-empty labels to integers")
    if len(set(codes.values())) != len(codes):
        raise fail("value_codes", "must not give two labels the same code")
    low, high = entry["min"], entry["max"]
    for field, limit in (("min", low), ("max", high)):
        if limit is not None and not _is_number(limit):
            raise fail(field, "must be a number or null")
    if low is not None and high is not None and low > high:
        raise fail("min", f"must not exceed max {high}")
    mask = entry["mask"]
    if mask is not None and (not _is_int(mask) or not 0 < mask <= 0xFFFF or typ != "value"
                             or not _is_contiguous(mask)):
        raise fail("mask", "must be null or one contiguous run of bits in 16 on a value type")
    if entry["refresh"] not in REFRESH_CLASSES:
        raise fail("refresh", f"must be one of {REFRESH_CLASSES}")
    for field in ("labels", "descriptions"):
        texts = entry[field]
        if (not isinstance(texts, dict) or set(texts) != set(LANGUAGES)
                or not all(isinstance(t, str) and t.strip() for t in texts.values())):
            raise fail(field, f"must give a non-empty text for each of {LANGUAGES}")
    request = entry["request"]
    if not isinstance(request, str) or not _REQUEST.match(request):
        raise fail("request", "must be 5 to 7 upper-case hex bytes separated by spaces")
    note = entry.get("note", "")
    if not isinstance(note, str):
        raise fail("note", "must be a string")

    return Command(
        name=name, node=node, index=index, form=form, type=typ, divisor=divisor, unit=unit,
        signed=entry["signed"], writable=entry["writable"], value_codes=dict(codes),
        min=low, max=high, refresh=entry["refresh"], labels=dict(entry["labels"]),
        descriptions=dict(entry["descriptions"]), mask=mask, request=request, note=note)


def _check_addresses(commands) -> None:
    """Two names for one (node, index) would read and write the same word under two names,
    which is how pyHPSU's aux_fct came to switch quiet mode. Only disjoint views of a
    declared bit-field word may share an address."""
    by_address: dict[tuple[int, int], list[Command]] = {}
    for cmd in commands:
        by_address.setdefault((cmd.node, cmd.index), []).append(cmd)
    for (node, index), group in by_address.items():
        if len(group) == 1:
            continue
        names = [c.name for c in group]
        if any(c.mask is None for c in group):
            raise TableError(f"commands.json: {names} share node 0x{node:03X} index "
                             f"0x{index:04X}; only bit-field views (with a mask) may")
        seen = 0
        for cmd in group:
            if cmd.mask & seen:
                raise TableError(f"commands.json: {names} share node 0x{node:03X} index "
                                 f"0x{index:04X} with overlapping masks")
            seen |= cmd.mask


def _is_contiguous(mask: int) -> bool:
    field = mask >> ((mask & -mask).bit_length() - 1)
    return field & (field + 1) == 0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
