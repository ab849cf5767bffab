"""``plantds demo``: the embedded demo plant.

Embedded Tango DB (pytango-db, sqlite in a state folder) → db/demo.json loaded with dsconfig →
the instrument simulators → the PlantDS server. Prints how to connect, runs until Ctrl-C, then
stops everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import tango

from . import config
from .processes import LOOPBACK_NAMES, embedded_database, parse_tango_host, plantds_server

DEFAULT_TANGO_HOST = "127.0.0.1:10000"
# The simulators' ports, as written in db/demo.json.
CPA_PORT, CHILLER_PORT, SOCKETCAND_PORT, ELM327_PORT = 15020, 15021, 15022, 15023
# The demo plant's configuration (dsconfig); with --archive, db/archiving.json is applied too.
CONFIG_FILES = ("demo.json",)
HISTORY_EXAMPLE = "plant/compressor/1/CoolantInTemperature plant/heatpump/1/t_hs --since 5m"


def demo_devices(demo_json: Path) -> dict[str, str]:
    """device name → Tango class, for the PlantDS/demo server in ``demo_json``."""
    servers = json.loads(demo_json.read_text())["servers"]
    return {
        device: cls
        for cls, devices in servers["PlantDS"]["demo"].items()
        for device in devices
    }


def simulators() -> list:
    """The simulators serving the URLs written in db/demo.json (ports fixed there)."""
    from ..devices.coleparmer.simulator import ChillerSimulator
    from ..devices.cryomech.simulator import CpaSimulator
    from ..devices.rotex.simulator import HpsuSimulator

    return [
        CpaSimulator(port=CPA_PORT),
        ChillerSimulator(family="Polystat", port=CHILLER_PORT, precision=0.1),
        # The heat pump's bus through both gateways (socketcand for the demo device, ELM327 to
        # try the other transport), with the RoCon display and another client polling it.
        HpsuSimulator(socketcand_port=SOCKETCAND_PORT, elm_port=ELM327_PORT,
                      background_rate_hz=5.0),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", type=Path, default=Path(os.environ.get("PLANTDS_STATE", ".state")) / "demo",
        help="folder for the sqlite Tango DB and logs (default: ./.state/demo)",
    )
    parser.add_argument("--run-for", type=float, default=None, help="stop by itself after N seconds")
    parser.add_argument("--archive", action="store_true",
                        help="also run HDB++ (built once, about 3 min) and archive db/archiving.json")
    parser.add_argument("--alarms", action="store_true",
                        help="also load db/alarms.json and run PANIC's PyAlarm for it (extra [alarms])")


def run(args: argparse.Namespace) -> int:
    tango_host = os.environ.get("TANGO_HOST") or DEFAULT_TANGO_HOST
    _check_ports(tango_host)
    os.environ["TANGO_HOST"] = tango_host
    state: Path = args.state_dir
    state.mkdir(parents=True, exist_ok=True)
    demo_json = config.bundled("demo.json")
    devices = demo_devices(demo_json)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    with contextlib.ExitStack() as stack:
        print(f"Starting the embedded Tango database at {tango_host} ({state / 'tango_database.db'})", flush=True)
        stack.enter_context(embedded_database(tango_host, state / "tango_database.db", state / "databaseds.log"))
        for name in CONFIG_FILES:
            config.load(config.bundled(name), tango_host)
            print(f"Loaded {config.bundled(name)} with dsconfig", flush=True)
        for sim in simulators():
            stack.enter_context(sim)
            print(f"Simulator running: {type(sim).__name__} at {sim.url}", flush=True)
        print("Starting PlantDS/demo ...", flush=True)
        stack.enter_context(plantds_server("demo", list(devices), tango_host, state / "PlantDS-demo.log"))
        _wait_past_init(devices, timeout=20.0)
        if args.archive:
            _start_archiving(stack, state, tango_host)
        if args.alarms:
            from ..alarms import pyalarms

            print("Starting PANIC's PyAlarm for db/alarms.json ...", flush=True)
            for names in stack.enter_context(pyalarms(config.bundled("alarms.json"), tango_host, state)).values():
                devices.update(dict.fromkeys(names, "PyAlarm"))
        _print_banner(tango_host, devices, state, args.archive)
        deadline = None if args.run_for is None else time.monotonic() + args.run_for
        while not stop.wait(0.5):
            if deadline is not None and time.monotonic() > deadline:
                break
        print("Stopping the demo plant ...", flush=True)
    print("Demo stopped.", flush=True)
    return 0


def _check_ports(tango_host: str) -> None:
    """Refuse to start, in one line, on a TANGO_HOST that is not loopback or a port in use."""
    host, port = parse_tango_host(tango_host)
    if host not in LOOPBACK_NAMES:
        raise ValueError(f"the demo plant runs on loopback only; TANGO_HOST {tango_host} is not "
                         f"(unset it for {DEFAULT_TANGO_HOST})")
    busy = []
    for number in (port, CPA_PORT, CHILLER_PORT, SOCKETCAND_PORT, ELM327_PORT):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", number))
            except OSError:
                busy.append(str(number))
    if busy:
        raise OSError(f"port(s) {', '.join(busy)} on 127.0.0.1 already in use (another demo "
                      "plant?): stop what uses them, or set TANGO_HOST to a free port")


def _start_archiving(stack: contextlib.ExitStack, state: Path, tango_host: str) -> None:
    from . import archiving
    from .hdbpp import running_archiver

    print("Starting HDB++ (deploy/hdbpp.sh: dependencies, build once, PostgreSQL, subscriber, manager) ...", flush=True)
    stack.enter_context(running_archiver(state, tango_host))
    plan = archiving.read_plan(config.bundled("archiving.json"), tango_host)
    archiving.apply(archiving.Manager(plan.manager), plan)


def _wait_past_init(devices: dict[str, str], timeout: float) -> None:
    """Give the devices their first refresh (the heat pump reads ~20 values on a busy bus), so
    the banner shows live states; a device still connecting after ``timeout`` is shown as is."""
    deadline = time.monotonic() + timeout
    for name in devices:
        proxy = tango.DeviceProxy(name)
        while time.monotonic() < deadline:
            with contextlib.suppress(tango.DevFailed):
                if proxy.state() != tango.DevState.INIT:
                    break
            time.sleep(0.2)


def _print_banner(tango_host: str, devices: dict[str, str], state: Path, archive: bool = False) -> None:
    lines = ["", "plantds demo plant is running.", f"  export TANGO_HOST={tango_host}", "  Devices:"]
    for name, cls in devices.items():
        try:
            proxy = tango.DeviceProxy(name)
            lines.append(f"    {name:24s} {cls:20s} State {proxy.state()}: {proxy.status()}")
        except tango.DevFailed as exc:
            lines.append(f"    {name:24s} {cls:20s} not answering: {exc.args[0].desc}")
    # One line per class to try, with this environment's Python (it has PyTango).
    examples = {
        "CryomechCPA": "print(d.state(), d.HighPressure, d.read_attribute('HighPressure').quality); d.On()",
        "ColeParmerChiller": "print(d.state(), d.InternalTemperature); d.Setpoint = 18.5",
        "RotexHPSU": "print(d.state(), d.t_hs, d.mode_01, d.mode_01_label)",
    }
    lines.append("  Try, from another shell:")
    for name, cls in devices.items():
        if cls in examples:
            lines.append(
                f"    TANGO_HOST={tango_host} {sys.executable} -c \"import tango; "
                f"d = tango.DeviceProxy('{name}'); {examples[cls]}\""
            )
    plantds = Path(sys.executable).with_name("plantds")
    lines.append(f"    TANGO_HOST={tango_host} {plantds} hpsu -c t_hs -c t_dhw -o JSON")
    if archive:
        lines.append(f"    TANGO_HOST={tango_host} {plantds} history {HISTORY_EXAMPLE}")
        lines.append(f"    TANGO_HOST={tango_host} {plantds} archive status")
    lines.append(f"    TANGO_HOST={tango_host} {plantds} gui    (or: run cooldown)")
    lines += [
        f"  Logs: {state}",
        "  Ready. Press Ctrl-C to stop everything.",
        "",
    ]
    print("\n".join(lines), flush=True)
