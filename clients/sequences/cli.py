"""``plantds run cooldown|warmup``: run one of the plant's sequences with progress lines."""

from __future__ import annotations

import argparse
import sys

import tango

from . import SequenceError
from .plant import CHILLER_CLASS, COMPRESSOR_CLASS, choose, cooldown, run_steps, warmup


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sequence", choices=("cooldown", "warmup"), help="cooldown: chiller, then compressor; "
                        "warmup: compressor off, then chiller off")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="longest wait for one step's condition, s (default 900)")
    parser.add_argument("--compressor", help=f"{COMPRESSOR_CLASS} device (default: the only one running)")
    parser.add_argument("--chiller", help=f"{CHILLER_CLASS} device (default: the only one running)")
    parser.add_argument("--setpoint", type=float, help="cooldown: write this chiller set point first (degC)")


def run(args: argparse.Namespace) -> int:
    try:
        compressor = choose(COMPRESSOR_CLASS, args.compressor, "--compressor")
        chiller = choose(CHILLER_CLASS, args.chiller, "--chiller")
        if args.sequence == "cooldown":
            steps = cooldown(compressor, chiller, args.timeout, args.setpoint)
        else:
            steps = warmup(compressor, chiller, args.timeout)
        print(f"{args.sequence}: {len(steps)} steps", flush=True)
        run_steps(steps, lambda line: print(line, flush=True))
    except SequenceError as exc:
        print(f"{args.sequence} failed: {exc}", file=sys.stderr)
        return 1
    except tango.DevFailed as exc:
        print(f"{args.sequence} failed: {exc.args[0].desc.strip()}", file=sys.stderr)
        return 1
    print(f"{args.sequence} complete", flush=True)
    return 0
