"""One attribute schema for the three instruments.

Each instrument's tables (the compressor's analog and status tables, the chiller family's
parameters, the heat pump's command table) produce :class:`Attr` records, and
:class:`~plantds.server.base.PlantDevice` creates, configures, serves and write-checks every
attribute from them: one way to declare an attribute, one write check, one unit convention
(Tango unit strings in ASCII: ``degC``, ``bar``, ``l/h``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Attr:
    """One Tango attribute read from the snapshot value of the same name."""

    name: str
    dtype: Any  # float, int, bool, str, or (str,) for a list of texts
    label: str
    description: str
    unit: str = ""
    format: str = ""  # Tango format ("%.1f"); empty: Tango's default
    # Writable within [low, high] (the DB's min_value/max_value may narrow it, never widen it);
    # None: read-only.
    write_range: tuple[float, float] | None = None
    # The unit follows device properties (the compressor's TemperatureUnit): it is forced per
    # device, whatever the DB or another device of the class says.
    unit_per_device: bool = False
    # Configuration defaults of this device (alarm limits in its units, labels in its language),
    # applied where the DB sets none; never written to the DB.
    defaults: Mapping[str, str] = field(default_factory=dict)
    # A comma-separated text of another snapshot value that is a list, for clients that show
    # string arrays behind a button (Taurus forms, alarm formulas).
    joins: str | None = None
    # Further attribute options (max_dim_x, memorized, ...).
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def writable(self) -> bool:
        return self.write_range is not None

    def tango_properties(self) -> dict[str, Any]:
        """The keyword arguments of ``tango.server.attribute`` (without fget/fset)."""
        props: dict[str, Any] = dict(dtype=self.dtype, label=self.label, doc=self.description, **self.options)
        if self.unit:
            props["unit"] = self.unit
        if self.format:
            props["format"] = self.format
        if self.write_range is not None:
            low, high = self.write_range
            # An integer attribute's limits as integers: Tango refuses "1.0" for a DevLong.
            text = (lambda v: str(int(v))) if self.dtype is int else (lambda v: repr(float(v)))
            props.update(min_value=text(low), max_value=text(high))
        return props


def joined(name: str, source: str, label: str, description: str) -> Attr:
    """A text attribute joining the list ``source`` (e.g. WarningsText from Warnings)."""
    return Attr(name, str, label, description, joins=source)
