"""``plantds.alarms``: the plant's PANIC alarms (db/alarms.json) served by PANIC's PyAlarm.

``plantds alarms`` loads the file into ``$TANGO_HOST`` with dsconfig and runs PyAlarm for each
PyAlarm server it declares, printing alarms as they activate and reset. Needs the ``[alarms]``
extra (panic, fandango).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import tango

from ..server import config
from ..server.processes import device_server

PYALARM = "PyAlarm"


def pyalarm_devices(json_file: Path) -> dict[str, list[str]]:
    """PyAlarm instance → its alarm devices, as declared in a dsconfig file."""
    servers = json.loads(Path(json_file).read_text())["servers"].get(PYALARM, {})
    return {instance: list(classes.get(PYALARM, {})) for instance, classes in servers.items()}


def alarm_tags(json_file: Path) -> dict[str, list[str]]:
    """Alarm device → the tags of its AlarmList."""
    servers = json.loads(Path(json_file).read_text())["servers"].get(PYALARM, {})
    return {
        device: [entry.split(":", 1)[0] for entry in block["properties"]["AlarmList"]]
        for classes in servers.values()
        for device, block in classes.get(PYALARM, {}).items()
    }


@contextlib.contextmanager
def pyalarms(json_file: Path, tango_host: str, log_dir: Path, load: bool = True) -> Iterator[dict[str, list[str]]]:
    """Load ``json_file`` (unless ``load`` is false) and run its PyAlarm servers on loopback."""
    if load:
        config.load(json_file, tango_host)
    instances = pyalarm_devices(json_file)
    with contextlib.ExitStack() as stack:
        for instance, devices in instances.items():
            stack.enter_context(device_server(
                PYALARM, instance, devices, tango_host, log_dir / f"PyAlarm-{instance}.log", timeout=90,
            ))
        yield instances


def active_alarms(device: str) -> list[str]:
    """Tags of the alarms the PyAlarm device has active now."""
    entries = tango.DeviceProxy(device).read_attribute("ActiveAlarms").value or ()
    return [entry.split(":", 1)[0] for entry in entries]
