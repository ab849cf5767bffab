"""``plantds demo``: the embedded demo plant.

Embedded Tango DB (pytango-db, sqlite in a state folder) → db/site-template.json with its Urls on
the simulators, loaded with dsconfig →
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

from . import config, sim_faults
from .processes import LOOPBACK_NAMES, embedded_database, parse_tango_host, plantds_server

DEFAULT_TANGO_HOST = "127.0.0.1:10000"
HISTORY_EXAMPLE = "plant/compressor/1/CoolantInTemperature plant/heatpump/1/t_hs --since 5m"
# The demo plant is the site template with its Urls on the simulators: one source for every label,
# limit, polling period and threshold, so the demo shows exactly what a site gets.
TEMPLATE = "site-template.json"
TEMPLATE_INSTANCE = "site1"
DEMO_INSTANCE = "demo"
# The simulators listen at 15020-15023 (compressor, chiller, socketcand, ELM327) by default, and
# take faults at 15024-15026 (compressor, chiller, heat pump: plantds fault 127.0.0.1:15024 offline).
DEFAULT_SIMULATOR_PORT = 15020
INSTRUMENT_PORTS = 4
SIMULATOR_PORTS = INSTRUMENT_PORTS + 3
# Each class's demo Url: its simulator, by offset from the first simulator port.
DEMO_URLS = {
    "CryomechCPA": ("tcp://127.0.0.1:{port}", 0),
    "ColeParmerChiller": ("socket://127.0.0.1:{port}", 1),
    "RotexHPSU": ("socketcand://127.0.0.1:{port}/can0", 2),
}


def demo_config(first_port: int = DEFAULT_SIMULATOR_PORT) -> dict:
    """The demo plant's dsconfig document: db/site-template.json as server PlantDS/demo, each
    device's Url naming its simulator (from ``first_port`` on)."""
    template = json.loads(config.bundled(TEMPLATE).read_text())
    doc = {key: value for key, value in template.items() if not key.startswith("_")}
    doc["_title"] = f"plantds demo plant: db/{TEMPLATE} with its Urls on the demo's simulators (plantds demo)"
    instances = doc["servers"]["PlantDS"]
    classes = instances.pop(TEMPLATE_INSTANCE)
    for cls, devices in classes.items():
        url, offset = DEMO_URLS[cls]
        for block in devices.values():
            block.setdefault("properties", {})["Url"] = [url.format(port=first_port + offset)]
    instances[DEMO_INSTANCE] = classes
    return doc


def demo_devices() -> dict[str, str]:
    """device name → Tango class, for the demo's PlantDS/demo server."""
    return {
        device: cls
        for cls, devices in demo_config()["servers"]["PlantDS"][DEMO_INSTANCE].items()
        for device in devices
    }


def simulators(first_port: int = DEFAULT_SIMULATOR_PORT) -> list:
    """The simulators serving the demo's instrument URLs, on ``first_port`` and the three after it."""
    from ..devices.coleparmer.simulator import ChillerSimulator
    from ..devices.cryomech.simulator import CpaSimulator
    from ..devices.rotex.simulator import HpsuSimulator

    return [
        CpaSimulator(port=first_port),
        ChillerSimulator(family="Polystat", port=first_port + 1, precision=0.1),
        # The heat pump's bus through both gateways (socketcand for the demo device, ELM327 to
        # try the other transport), with the RoCon display and another client polling it.
        HpsuSimulator(socketcand_port=first_port + 2, elm_port=first_port + 3, background_rate_hz=5.0),
    ]


def config_files(folder: Path, first_port: int = DEFAULT_SIMULATOR_PORT) -> list[Path]:
    """The files the demo loads, in order: its configuration, written to ``folder/demo.json``
    (the operator can read, diff or load it as any site file). With --archive, db/archiving.json
    is applied after these."""
    path = folder / "demo.json"
    path.write_text(json.dumps(demo_config(first_port), indent=2, ensure_ascii=False) + "\n")
    return [path]


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

    parser.add_argument(
        "--port-base", type=int, default=None, metavar="N",
        help=f"open every port from N on: the Tango DB at 127.0.0.1:N (instead of $TANGO_HOST) and "
             f"the simulators and their fault control ports at N+1..N+{SIMULATOR_PORTS} (instead of {DEFAULT_SIMULATOR_PORT}-"
             f"{DEFAULT_SIMULATOR_PORT + SIMULATOR_PORTS - 1}), so that demos do not collide",
    )


def run(args: argparse.Namespace) -> int:
    if args.port_base is None:
        tango_host = os.environ.get("TANGO_HOST") or DEFAULT_TANGO_HOST
        first_port = DEFAULT_SIMULATOR_PORT
    elif not 1 <= args.port_base <= 65535 - SIMULATOR_PORTS:
        print(f"plantds demo: --port-base {args.port_base} is not a port from 1 to "
              f"{65535 - SIMULATOR_PORTS}", file=sys.stderr)
        return 2
    else:
        tango_host, first_port = f"127.0.0.1:{args.port_base}", args.port_base + 1
    _check_ports(tango_host, first_port)
    os.environ["TANGO_HOST"] = tango_host
    state: Path = args.state_dir
    state.mkdir(parents=True, exist_ok=True)
    devices = demo_devices()

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    with contextlib.ExitStack() as stack:
        print(f"Starting the embedded Tango database at {tango_host} ({state / 'tango_database.db'})", flush=True)
        stack.enter_context(embedded_database(tango_host, state / "tango_database.db", state / "databaseds.log"))
        for path in config_files(state, first_port):
            config.load(path, tango_host)
            print(f"Loaded {path} with dsconfig", flush=True)
        controls = []
        for number, sim in enumerate(simulators(first_port)):
            stack.enter_context(sim)
            control = sim_faults.ControlServer(sim, first_port + INSTRUMENT_PORTS + number)
            stack.callback(control.close)
            controls.append((type(sim).__name__, control.address))
            print(f"Simulator running: {type(sim).__name__} at {sim.url}; faults at {control.address}", flush=True)
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
        _print_banner(tango_host, devices, state, args.archive, controls)
        deadline = None if args.run_for is None else time.monotonic() + args.run_for
        while not stop.wait(0.5):
            if deadline is not None and time.monotonic() > deadline:
                break
        print("Stopping the demo plant ...", flush=True)
    print("Demo stopped.", flush=True)
    return 0


def _check_ports(tango_host: str, first_port: int) -> None:
    """Refuse to start, in one line, on a TANGO_HOST that is not loopback or a port in use."""
    host, port = parse_tango_host(tango_host)
    if host not in LOOPBACK_NAMES:
        raise ValueError(f"the demo plant runs on loopback only; TANGO_HOST {tango_host} is not "
                         f"(unset it for {DEFAULT_TANGO_HOST})")
    busy = []
    for number in (port, *range(first_port, first_port + SIMULATOR_PORTS)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", number))
            except OSError:
                busy.append(str(number))
    if busy:
        raise OSError(f"port(s) {', '.join(busy)} on 127.0.0.1 already in use (another demo "
                      "plant?): stop what uses them, or choose other ports with --port-base N")


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


def _print_banner(tango_host: str, devices: dict[str, str], state: Path, archive: bool = False,
                  controls: list[tuple[str, str]] = ()) -> None:
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
    for simulator, address in controls:
        lines.append(f"    {plantds} fault {address} offline    ({simulator}; then online; 'help' lists its faults)")
    lines += [
        f"  Logs: {state}",
        "  Ready. Press Ctrl-C to stop everything.",
        "",
    ]
    print("\n".join(lines), flush=True)
