"""``plantds gui [--snapshot DIR]``: the Taurus GUI of the plantds devices in ``$TANGO_HOST``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import tango

from . import POLLING_MS, plant_devices, release_taurus


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--snapshot", type=Path, metavar="DIR",
                        help="render offscreen, write one PNG per panel into DIR and exit")
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="--snapshot: longest wait for a panel's values, s (default 20)")


def run(args: argparse.Namespace) -> int:
    if args.snapshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        import taurus
        from taurus.qt.qtgui.application import TaurusApplication

        from .window import PlantWindow
    except ImportError as exc:
        print(f"gui: {exc.name} is not installed; pip install 'plantds[gui]'", file=sys.stderr)
        return 1
    try:
        devices = plant_devices()
    except tango.DevFailed as exc:
        print(f"gui: the Tango DB does not answer: {exc.args[0].desc.strip()}", file=sys.stderr)
        return 1
    if not devices:
        print("gui: no plantds device is running in this Tango DB", file=sys.stderr)
        return 1
    taurus.Manager().changeDefaultPollingPeriod(POLLING_MS)
    app = TaurusApplication(sys.argv[:1], cmd_line_parser=None)
    window = PlantWindow(devices)
    window.show()
    try:
        if not args.snapshot:
            return app.exec_()
        for path in snapshot(app, window, args.snapshot, args.timeout):
            print(path, flush=True)
        return 0
    finally:
        window.close()
        release_taurus()


def snapshot(app, window, folder: Path, timeout: float) -> list[Path]:
    """Show each panel until its values are in (or ``timeout``), then save it as a PNG."""
    from taurus.taurusstatecontroller import application

    # What exec_() would say: Taurus starts its polling (attributes without change events) only
    # once the application has started.
    application.application_started()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for panel in window.panels:
        window.tabs.setCurrentWidget(panel)
        process_until(app, panel.filled, timeout)
        process_until(app, lambda: False, 3.0)  # let the trends draw a few points
        path = folder / (panel.device.replace("/", "_") + ".png")
        panel.grab().save(str(path))
        paths.append(path)
    return paths


def process_until(app, condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.05)
    return condition()
