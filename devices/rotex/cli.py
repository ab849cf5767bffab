"""``plantds hpsu``: pyHPSU's command line, served by the running RotexHPSU device.

    plantds hpsu -c t_hs -c t_dhw -o JSON        read (JSON: [{"name", "resp", "timestamp"}])
    plantds hpsu -c heat_slope:0.5 -o CSV        write, print the value read back
    plantds hpsu --list -l DE                    the table's names and labels

The Tango device owns the bus; this is one more client of it. Values the device acquires are
read from its attributes (its cache: no bus traffic however many clients ask), any other table
entry with ReadValue, writes with WriteValue (rounded, verified, refused before the wire when
read-only or out of range). So any number of these share the bus, with no message broker.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import pyhpsu
from .table import LANGUAGES, Command, load_commands

DEFAULT_DEVICE = "plant/heatpump/1"
HEAT_PUMP_CLASS = "RotexHPSU"
OUTPUTS = ("JSON", "CSV")


class Unavailable(Exception):
    """The device has no valid value for an acquired command (bus lost, sentinel word)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--cmd", action="append", default=[], metavar="NAME[:VALUE]",
                        help="read NAME, or write VALUE (number or code label) to it; repeatable. "
                             "Without -c: every command the device acquires")
    parser.add_argument("-o", "--output_type", type=str.upper, choices=OUTPUTS, default="JSON",
                        help="JSON: a list of {name, resp, timestamp}; CSV: timestamp,name,resp")
    parser.add_argument("-d", "--device", default=DEFAULT_DEVICE,
                        help=f"RotexHPSU device (default {DEFAULT_DEVICE}; TANGO_HOST as usual)")
    parser.add_argument("-l", "--language", type=str.upper, choices=[x.upper() for x in LANGUAGES],
                        default="EN", help="language of the --list labels")
    parser.add_argument("--list", action="store_true",
                        help="list the command table (name, ro/rw, unit, label) and exit")


def run(args: argparse.Namespace) -> int:
    table = load_commands()
    if args.list:
        for cmd in table.values():
            print(f"{cmd.name:>22}  {'rw' if cmd.writable else 'ro'}  {cmd.unit:<5} "
                  f"{cmd.labels[args.language.lower()]}")
        return 0
    jobs = [pyhpsu.split_job(job) for job in args.cmd]
    unknown = [name for name, _ in jobs if name not in table]
    if unknown:
        print(f"unknown command(s): {', '.join(unknown)} (plantds hpsu --list shows the names)",
              file=sys.stderr)
        return 2

    import tango  # here, so --list works without a Tango installation's environment

    try:
        proxy = tango.DeviceProxy(args.device)
        device_class = proxy.info().dev_class
        acquired = {name.lower() for name in proxy.get_attribute_list()}
    except tango.DevFailed as exc:
        print(f"cannot reach {args.device}: {exc.args[0].desc.strip()}", file=sys.stderr)
        return 1
    if device_class != HEAT_PUMP_CLASS:
        print(f"{args.device} is a {device_class}, not a {HEAT_PUMP_CLASS} heat pump device "
              "(-d names one)", file=sys.stderr)
        return 2
    if not jobs:
        jobs = [(name, None) for name in table if name in acquired]

    results, failed = [], False
    for name, value in jobs:
        cmd = table[name]
        try:
            if value is None:
                results.append(_read(proxy, cmd, cmd.name in acquired))
            else:
                read_back = proxy.WriteValue([name, value])
                results.append(_entry(cmd, pyhpsu.resp_from_text(cmd, read_back), time.time()))
        except tango.DevFailed as exc:
            print(f"{name}: {exc.args[0].desc}", file=sys.stderr)
            failed = True
        except Unavailable as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            failed = True
    if args.output_type == "JSON":
        print(json.dumps(results))
    else:
        for result in results:
            print(f"{result['timestamp']},{result['name']},{result['resp']}")
    return 1 if failed else 0


def _read(proxy, cmd: Command, acquired: bool) -> dict:
    import tango

    if not acquired:
        return _entry(cmd, pyhpsu.resp_from_text(cmd, proxy.ReadValue(cmd.name)), time.time())
    reading = proxy.read_attribute(cmd.name)
    if reading.quality == tango.AttrQuality.ATTR_INVALID:
        raise Unavailable(f"no valid value; {proxy.name()} is {proxy.state()}: {proxy.status()}")
    return _entry(cmd, pyhpsu.resp(cmd, reading.value), reading.time.totime())


def _entry(cmd: Command, resp: str | int, timestamp: float) -> dict:
    return {"name": cmd.name, "resp": resp, "timestamp": timestamp}
