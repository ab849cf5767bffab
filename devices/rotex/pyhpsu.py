"""What pyHPSU users' scripts expect: its value text (``resp``) and its ``-c name[:value]`` syntax.

pyHPSU prints temperatures as ``"%.2f"`` text (``"43.30"``), percentages as integers and every
other value with ``str()`` (§5.1). ``ReadValue`` and ``plantds hpsu`` keep that, so
the cron jobs and home-automation glue that parse pyHPSU's JSON or CSV keep working. Pure: no
bus, no Tango.

Section numbers (§) refer to ``docs/rotex-hpsu-can.md``.
"""

from __future__ import annotations

from .table import Command


def resp(cmd: Command, value: float | int) -> str | int:
    """pyHPSU's ``resp`` for a decoded value: degC as "%.2f" text, % as int, else ``str()``."""
    if cmd.unit == "degC":
        return f"{value:.2f}"
    if cmd.unit == "%":
        return int(value)
    return str(value)


def text(cmd: Command, value: float | int) -> str:
    """``resp`` as the text ReadValue returns."""
    return str(resp(cmd, value))


def resp_from_text(cmd: Command, value_text: str) -> str | int:
    """The ``resp`` JSON carries for a ReadValue text (percentages are numbers there)."""
    return int(value_text) if cmd.unit == "%" else value_text


def split_job(job: str) -> tuple[str, str | None]:
    """``-c name`` → (name, None); ``-c name:value`` → (name, value text)."""
    name, sep, value = job.partition(":")
    return name.strip().lower(), value.strip() if sep else None


# pyHPSU's own labels where the table uses clearer ones, so pyHPSU command lines keep working.
PYHPSU_LABELS = {"mode_01": {"sink": "reduced"}}


def parse_value(cmd: Command, value_text: str) -> str | float:
    """A value typed by a user: one of the command's code labels as it is (or pyHPSU's name for
    it), else a number in the command's unit (ValueError naming the labels it could have been)."""
    if "\0" in value_text:  # C clients end strings there: what they meant is not what came
        raise ValueError(f"{cmd.name}: the value contains a NUL character")
    value_text = value_text.strip()
    value_text = PYHPSU_LABELS.get(cmd.name, {}).get(value_text, value_text)
    if value_text in cmd.value_codes:
        return value_text
    try:
        return float(value_text)
    except ValueError:
        if cmd.value_codes:
            raise ValueError(f"{cmd.name}: {value_text!r} is neither a number nor one of its "
                             f"labels ({', '.join(cmd.value_codes)})") from None
        raise ValueError(f"{cmd.name}: {value_text!r} is not a number") from None
