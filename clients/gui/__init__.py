"""``plantds.gui``: a Taurus control-room GUI of the plantds devices in the Tango DB (extra
``[gui]``: taurus, PyQt5, lxml, taurus_pyqtgraph).

One panel (tab) per device found by class, any number per class: State LED and Status, the
operator's values with labels, units and alarm colours (a TaurusForm: Tango's quality colours the
value), warnings/alarms as text, the writes (``Setpoint``, ``mode_01`` ...) and the ``On``/``Off``
commands, and trends of temperatures and pressures. Which attributes a panel shows is
:data:`PANELS`; an attribute the device does not have (the heat pump's ``Commands`` decide its
attributes) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import tango

from ..sequences.plant import exported_devices

# Values faster than Taurus's default 3 s when an attribute has no change events.
POLLING_MS = 1000


@dataclass(frozen=True)
class PanelSpec:
    title: str
    values: tuple[str, ...]
    commands: tuple[str, ...]
    trends: tuple[tuple[str, ...], ...]  # one plot per tuple (temperatures, pressures)


PANELS = {
    "CryomechCPA": PanelSpec(
        "Compressor",
        values=("OperatingState", "HighPressure", "LowPressure", "DeltaPressureAverage", "HeliumTemperature",
                "OilTemperature", "CoolantInTemperature", "CoolantOutTemperature", "MotorCurrent",
                "HoursOfOperation", "WarningsText", "AlarmsText"),
        commands=("On", "Off"),
        trends=(("HeliumTemperature", "OilTemperature", "CoolantInTemperature", "CoolantOutTemperature"),
                ("HighPressure", "LowPressure")),
    ),
    "ColeParmerChiller": PanelSpec(
        "Chiller",
        values=("InternalTemperature", "ExternalTemperature", "Setpoint", "AtSetpoint", "StatusFlagsText"),
        commands=("On", "Off"),
        trends=(("InternalTemperature", "ExternalTemperature", "Setpoint"),),
    ),
    "RotexHPSU": PanelSpec(
        "Heat pump",
        values=("mode_01", "mode_01_label", "t_hs", "t_hs_set", "t_return", "t_ext", "t_dhw", "t_dhw_set",
                "water_pressure", "flow_rate", "error"),
        commands=("On", "Off"),
        trends=(("t_hs", "t_return", "t_ext", "t_dhw"), ("water_pressure",)),
    ),
}


def plant_devices(db: tango.Database | None = None) -> list[tuple[str, str]]:
    """(device, class) of every running plantds device in the Tango DB, by class then name."""
    return [(name, cls) for cls in PANELS for name in exported_devices(cls, db)]


def shown_attributes(device: str, names: tuple[str, ...]) -> list[str]:
    """``names`` the device has, in order. DevEnum attributes are left out: Taurus mishandles
    their labels (the project replaces them by a code and a string label)."""
    proxy = tango.DeviceProxy(device)
    present = {}
    for info in proxy.attribute_list_query():
        present[info.name.lower()] = info.data_type != tango.CmdArgType.DevEnum
    return [name for name in names if present.get(name.lower())]


def release_taurus() -> None:
    """Stop Taurus's polling, then unsubscribe every event, while the devices still answer.

    Left to Taurus's own exit handler, the clean-up can deadlock the process at exit: it
    unsubscribes in the main thread while an event callback waits for an attribute's lock that
    the polling thread holds, and that thread waits for the interpreter (seen once in CI, a
    pytest process that never ended after its last test). With polling stopped first and one
    polling period let pass, no poll is in flight when the unsubscribing starts.
    """
    import time

    import taurus

    factory = taurus.Factory("tango")
    factory.disablePolling()
    time.sleep(POLLING_MS / 1000.0)  # a poll already under way ends
    # The attributes' and devices' own clean-up (their unsubscribing), not the factory's: that
    # also shuts the process's Tango client layer down, which the caller may still use.
    for model in (*factory.tango_attrs.values(), *factory.tango_devs.values()):
        model.cleanUp()
