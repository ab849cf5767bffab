"""``plantds``: the operator command line (demo plant, simulators, site configuration)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# Simulators by CLI name → module; each module offers add_arguments(parser) and run(args).
SIMULATORS = {
    "cpa": "plantds.devices.cryomech.simulator",
    "chiller": "plantds.devices.coleparmer.simulator",
    "heatpump": "plantds.devices.rotex.simulator",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plantds", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    from . import config, demo

    demo_parser = sub.add_parser("demo", help="run the embedded demo plant until Ctrl-C")
    demo.add_arguments(demo_parser)
    demo_parser.set_defaults(run=demo.run)

    config_parser = sub.add_parser("config", help="load, diff or dump the site configuration (dsconfig)")
    config.add_arguments(config_parser)
    config_parser.set_defaults(run=config.run)

    from . import archiving, history

    archive_parser = sub.add_parser("archive", help="configure HDB++ archiving (configuration manager) and show its state")
    archiving.add_arguments(archive_parser)
    archive_parser.set_defaults(run=archiving.run)

    history_parser = sub.add_parser("history", help="read archived values back from HDB++ (table, CSV, JSON, PNG)")
    history.add_arguments(history_parser)
    history_parser.set_defaults(run=history.run)

    from ..devices.rotex import cli as hpsu

    hpsu_parser = sub.add_parser("hpsu", help="read/write the heat pump like pyHPSU, through its Tango device")
    hpsu.add_arguments(hpsu_parser)
    hpsu_parser.set_defaults(run=hpsu.run)

    from ..sequences import cli as sequences

    run_parser = sub.add_parser("run", help="run a plant sequence (cooldown, warmup) with progress lines")
    sequences.add_arguments(run_parser)
    run_parser.set_defaults(run=sequences.run)

    from ..alarms import cli as alarms

    alarms_parser = sub.add_parser("alarms", help="load db/alarms.json and run PANIC's PyAlarm for it until Ctrl-C")
    alarms.add_arguments(alarms_parser)
    alarms_parser.set_defaults(run=alarms.run)

    from ..gui import cli as gui

    gui_parser = sub.add_parser("gui", help="the Taurus GUI of the plantds devices in the Tango DB")
    gui.add_arguments(gui_parser)
    gui_parser.set_defaults(run=gui.run)

    sim_parser = sub.add_parser("simulate", help="run one instrument simulator until Ctrl-C")
    sims = sim_parser.add_subparsers(dest="instrument", required=True)
    for name, module_name in SIMULATORS.items():
        module = importlib.import_module(module_name)
        p = sims.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        code = args.run(args) or 0
    except BrokenPipeError:
        # The reader left (`plantds hpsu --list | head`): what it did not read is not an error.
        # stdout is pointed at /dev/null so the interpreter's final flush fails no more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except KeyboardInterrupt:
        code = 130
    except (OSError, ValueError, RuntimeError) as exc:
        # What an operator can fix (a port in use, a file, a setting): one line, no traceback.
        print(f"plantds {args.command}: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
