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


# Subcommands: name → (module, help); each module offers add_arguments(parser) and run(args).
# Imported when the parser is built, in this order (the clients' extras only load their tools
# when run).
COMMANDS = {
    "demo": ("plantds.server.demo", "run the embedded demo plant until Ctrl-C"),
    "config": ("plantds.server.config", "load, diff or dump the site configuration (dsconfig)"),
    "archive": ("plantds.server.archiving", "configure HDB++ archiving (configuration manager) and show its state"),
    "history": ("plantds.server.history", "read archived values back from HDB++ (table, CSV, JSON, PNG)"),
    "hpsu": ("plantds.devices.rotex.cli", "read/write the heat pump like pyHPSU, through its Tango device"),
    "run": ("plantds.sequences.cli", "run a plant sequence (cooldown, warmup) with progress lines"),
    "alarms": ("plantds.alarms.cli", "load db/alarms.json and run PANIC's PyAlarm for it until Ctrl-C"),
    "gui": ("plantds.gui.cli", "the Taurus GUI of the plantds devices in the Tango DB"),
    "fault": ("plantds.server.sim_faults", "inject a fault into a running simulator (its --control-port)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plantds", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(run=module.run)

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
