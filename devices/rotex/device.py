"""RotexHPSU: the Tango face of a Rotex HPSU / Daikin Altherma heat pump (thin: the command table
decides the attributes; State comes from mode_01 and error)."""

from __future__ import annotations

import math
import re
from typing import Any

from tango import DevState
from tango.server import command, device_property

from ...server.base import (
    REASON_FAILED, REASON_OUT_OF_RANGE, REASON_READ_ONLY, PlantDevice, fail,
)
from ...server.schema import Attr
from . import protocol, pyhpsu
from .driver import OWN_ID, HpsuDriver
from .table import DEFAULT_MONITORING, LANGUAGES, Command, load_commands

# State is derived from these two, so they are acquired and shown whatever Commands lists.
STATE_COMMANDS = ("mode_01", "error")
STANDBY = "standby"
# A coded command's companion attribute: the label of its current code ("heat" for 3).
LABEL_SUFFIX = "_label"
READ_VALUE = "ReadValue"


class RotexHPSU(PlantDevice):
    """Rotex HPSU / Daikin Altherma heat pump on its CAN bus (SocketCAN, socketcand, ELM327)."""

    OwnCanId = device_property(
        dtype=int, default_value=OWN_ID,
        doc="CAN id this device sends from and its replies are addressed to (11 bit; default "
            "0x680 = 1664, the PC/ComfortSoft address). Every client on one bus needs its own.",
    )
    Commands = device_property(
        dtype=(str,), default_value=list(DEFAULT_MONITORING),
        doc="Table names to acquire, one attribute each (pyHPSU names: t_hs, t_dhw, "
            "heat_slope ...); mode_01 and error are always acquired, State needs them",
    )
    Language = device_property(
        dtype=str, default_value="EN", doc="Language of labels and descriptions: EN, DE or IT"
    )
    OnMode = device_property(
        dtype=str, default_value="heat", doc="mode_01 mode the On command sets (not standby)"
    )
    OffMode = device_property(
        dtype=str, default_value=STANDBY, doc="mode_01 mode the Off command sets"
    )
    SlowRefreshPeriod = device_property(
        dtype=int, default_value=60000,
        doc="Period of the table's 'slow' commands (settings, counters) [ms]; 'fast' ones are "
            "read every RefreshPeriod, and a write's read-back refreshes its value at once",
    )

    # ---- configuration -----------------------------------------------------------------------
    def create_driver(self) -> HpsuDriver:
        self._table = load_commands()
        self._acquired: tuple[str, ...] = ()  # no attributes until the properties are valid
        self._language = self.Language.strip().lower()
        if self._language not in LANGUAGES:
            raise ValueError(f"Language {self.Language!r} is not one of EN, DE, IT")
        modes = self._table["mode_01"].value_codes
        for prop, mode in (("OnMode", self.OnMode), ("OffMode", self.OffMode)):
            if mode not in modes:
                raise ValueError(f"{prop} {mode!r} is not a mode_01 mode ({', '.join(modes)})")
        if self.OnMode == STANDBY:
            raise ValueError("OnMode 'standby' would switch nothing on; choose an active mode")
        if self.SlowRefreshPeriod < 0:
            raise ValueError(f"SlowRefreshPeriod {self.SlowRefreshPeriod} ms must be 0 or more")
        names = [n.lower() for entry in self.Commands for n in re.split(r"[\s,]+", entry) if n]
        acquired = tuple(dict.fromkeys(names + list(STATE_COMMANDS)))
        driver = HpsuDriver(  # checks the names, the Url and the own id
            self.Url, own_id=self.OwnCanId, commands=acquired, timeout=self.Timeout,
            retries=self.Retries, slow_period_s=self.SlowRefreshPeriod / 1000.0,
        )
        self._acquired = acquired
        return driver

    def attribute_schema(self) -> list[Attr]:
        schema = []
        for name in self._acquired:  # set by create_driver, even when it fails
            schema += self._command_attributes(self._table[name])
        return schema

    def _command_attributes(self, cmd: Command) -> list[Attr]:
        """The command's attribute and, for a coded one, its label's; labels and descriptions
        are per device (one server may host devices in different languages)."""
        label = cmd.labels[self._language]
        doc = cmd.descriptions[self._language]
        if cmd.value_codes:
            doc += " Codes: " + ", ".join(f"{code} {lbl}" for lbl, code in cmd.value_codes.items())
        floating = cmd.type == "float"
        value = Attr(
            cmd.name, float if floating else int, label, doc, unit=cmd.unit,
            format=f"%.{protocol.decimals(cmd)}f" if floating else "%d",
            write_range=protocol.write_range(cmd) if cmd.writable else None,
            unit_per_device=True, defaults={"label": label, "description": doc},
        )
        if not cmd.value_codes:
            return [value]
        label_doc = (f"Label of the code {cmd.name} reads ({', '.join(cmd.value_codes)}); "
                     f"the code itself is {cmd.name}")
        return [value, Attr(cmd.name + LABEL_SUFFIX, str, label, label_doc,
                            defaults={"label": label, "description": label_doc})]

    # ---- reading -----------------------------------------------------------------------------
    def snapshot_value(self, key: str) -> tuple[Any, float, bool]:
        """``<name>_label`` attributes read their command's code and show its label."""
        if not key.endswith(LABEL_SUFFIX) or key[: -len(LABEL_SUFFIX)] not in self._acquired:
            return super().snapshot_value(key)
        cmd = self._table[key[: -len(LABEL_SUFFIX)]]
        code, stamp, valid = super().snapshot_value(cmd.name)
        return (code_label(cmd, code) if valid else None), stamp, valid

    @command(
        dtype_in=str, doc_in="Name of any command of the table (e.g. t_hs, mode_01, heat_slope)",
        dtype_out=str,
        doc_out="Its value read now from the heat pump, as pyHPSU prints it: degC as '43.30', "
                "codes as numbers (mode_01 '3' = heat)",
    )
    def ReadValue(self, name: str) -> str:
        cmd = self._command(name)
        value = self.run_on_instrument(
            f"{READ_VALUE} {cmd.name}", lambda drv: drv.read(cmd.name), changes_instrument=False
        )
        if value is None:
            fail(REASON_FAILED, f"{READ_VALUE} {cmd.name}: the heat pump reports 'no value' "
                                "(sensor not fitted or not available)")
        return pyhpsu.text(cmd, value)

    # ---- writing -----------------------------------------------------------------------------
    def write_value(self, name: str, value: float) -> float | int:
        return self.write_command(self._table[name], value, f"write {name}")

    @command(
        dtype_in=(str,),
        doc_in="[name, value]: any writable command of the table; value in its unit or one of "
               "its code labels (e.g. ['heat_slope', '0.5'], ['mode_01', 'heat'])",
        dtype_out=str, doc_out="The value read back after the write, as ReadValue prints it",
    )
    def WriteValue(self, args: list[str]) -> str:
        if len(args) != 2:
            fail(REASON_OUT_OF_RANGE, f"WriteValue expects [name, value], got {len(args)} strings")
        what = f"WriteValue {args[0]}"
        self.check_writable(what)
        cmd = self._command(args[0])
        try:
            value = pyhpsu.parse_value(cmd, args[1])
        except ValueError as exc:
            fail(REASON_OUT_OF_RANGE, f"{what} refused: {exc}; nothing was sent")
        return pyhpsu.text(cmd, self.write_command(cmd, value, what))

    def write_command(self, cmd: Command, value: float | str, what: str) -> float | int:
        """Check everything here, then write through the worker: the driver rounds to the
        command's resolution, reads the value back and raises NotVerified if it differs."""
        self.check_writable(what)
        if not cmd.writable:
            fail(REASON_READ_ONLY, f"{what} refused: {cmd.name} is read-only in the heat pump's "
                                   "command table; nothing was sent")
        if isinstance(value, str):  # a label: range-check its code (an unknown one: below)
            number = cmd.value_codes.get(value, math.nan) / cmd.divisor
        else:
            number = value
        if math.isfinite(number):  # NaN: an unknown label, named below
            self.checked_value(cmd.name, number, protocol.write_range(cmd))
        try:
            protocol.encode_write(cmd, value)  # the driver's own checks, before anything is queued
        except ValueError as exc:
            fail(REASON_OUT_OF_RANGE, f"{what} refused: {exc}; nothing was sent")
        return self.run_on_instrument(what, lambda drv: drv.write(cmd.name, value))

    def _command(self, name: str) -> Command:
        cmd = self._table.get(name.strip().lower())
        if cmd is None:
            fail(REASON_OUT_OF_RANGE, f"{name!r} is not a command of the heat pump's table "
                                      "(`plantds hpsu --list` lists them)")
        return cmd

    # ---- State / Status ----------------------------------------------------------------------
    def instrument_state(self, values: dict) -> tuple[DevState, str]:
        error, mode = values.get("error"), values.get("mode_01")
        if error:
            return DevState.FAULT, (
                f"The heat pump reports error code {error}. Look the code up on the RoCon display "
                "or in the Rotex manual and correct the cause; it clears at the heat pump."
            )
        if mode is None:
            return DevState.UNKNOWN, "The heat pump does not report its operating mode (mode_01)"
        label = protocol.label_for(self._table["mode_01"], mode)
        unread = "" if error is not None else "; its error code could not be read"
        unanswered = self.worker.driver.unanswered
        if unanswered:  # their attributes read INVALID; named once here, re-probed slowly
            unread += f"\nNo reply for {', '.join(unanswered)} (re-probed every {self.SlowRefreshPeriod / 1000:g} s)"
        if label is None:
            return DevState.ALARM, f"mode_01 reads {mode}, a code the table does not know{unread}"
        if label == STANDBY:
            return DevState.OFF, f"Standby (mode_01 = {mode}); On switches to {self.OnMode}{unread}"
        return DevState.ON, f"Operating mode {label} (mode_01 = {mode}){unread}"

    # ---- commands ----------------------------------------------------------------------------
    @command(doc_in="Switch mode_01 to OnMode (default heat), verified by reading it back")
    def On(self) -> None:
        self.write_command(self._table["mode_01"], self.OnMode, "On")

    @command(doc_in="Switch mode_01 to OffMode (default standby), verified by reading it back")
    def Off(self) -> None:
        self.write_command(self._table["mode_01"], self.OffMode, "Off")


def code_label(cmd: Command, code: int | None) -> str:
    """The label of a code, or a text saying the table does not know it."""
    return protocol.label_for(cmd, code) or f"undocumented code {code}"
