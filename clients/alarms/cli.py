"""``plantds alarms``: load db/alarms.json and run PANIC's PyAlarm for it until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

import tango

from ..server import config
from . import active_alarms, pyalarms

DEFAULT_FILE = "alarms.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", type=Path, default=None,
                        help="dsconfig file with the PyAlarm devices (default: the bundled db/alarms.json)")
    parser.add_argument("--no-load", action="store_true", help="do not load the file; run what the DB holds")
    parser.add_argument("--log-dir", type=Path, default=Path(os.environ.get("PLANTDS_STATE", ".state")) / "alarms",
                        help="folder for PyAlarm's output (default: ./.state/alarms)")
    parser.add_argument("--run-for", type=float, default=None, help="stop by itself after N seconds")


def run(args: argparse.Namespace) -> int:
    tango_host = os.environ.get("TANGO_HOST")
    if not tango_host:
        print("alarms: export TANGO_HOST first (the Tango DB the plant's devices are in)", file=sys.stderr)
        return 1
    try:
        import panic  # noqa: F401  (PyAlarm's package: fail with the fix, not a traceback)
    except ImportError:
        print("alarms: PANIC is not installed; pip install 'plantds[alarms]'", file=sys.stderr)
        return 1
    json_file = args.file or config.bundled(DEFAULT_FILE)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with pyalarms(json_file, tango_host, args.log_dir, load=not args.no_load) as instances:
        devices = [device for names in instances.values() for device in names]
        print(f"PyAlarm running for {', '.join(devices)} ({json_file}); Ctrl-C stops it", flush=True)
        watch(devices, stop, args.run_for)
    print("PyAlarm stopped.", flush=True)
    return 0


def watch(devices: list[str], stop: threading.Event, run_for: float | None) -> None:
    """Print each alarm as it activates and resets."""
    active: dict[str, set[str]] = {device: set() for device in devices}
    remaining = run_for
    while not stop.wait(1.0):
        for device in devices:
            try:
                now = set(active_alarms(device))
            except tango.DevFailed as exc:
                print(f"{device}: not answering: {exc.args[0].desc.strip()}", flush=True)
                continue
            for tag in sorted(now - active[device]):
                print(f"{device}: ACTIVE {tag}", flush=True)
            for tag in sorted(active[device] - now):
                print(f"{device}: reset  {tag}", flush=True)
            active[device] = now
        if remaining is not None:
            remaining -= 1.0
            if remaining <= 0:
                return
