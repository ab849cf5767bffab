"""Corrupted replies per instrument: how many became a value, by corruption class.

Usage: python benchmarks/fuzz_replies.py [--replies 100000] [--seed 1] [cpa chiller heatpump]

Runs :mod:`plantds.server.fuzzing` (independent fakes on loopback sockets and pseudo-terminals,
one corrupted reply per request of the real driver) and prints, per class, the replies sent,
rejected, accepted with the right value, and **wrong values accepted**. Detectable classes must
read 0 there (the unit tests assert it at 10^4); the residue classes are what the protocol itself
cannot see: a Modbus TCP register word (no checksum), an NC reply whose 8-bit checksum happens to
match, a CAN value relayed over TCP. Their rate is the figure to quote.

Prints figures only; nothing is asserted. Everything it starts is stopped before it returns.
"""

from __future__ import annotations

import argparse
import logging
import time

from plantds.server.fuzzing import FUZZERS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=100_000, help="per instrument")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("instruments", nargs="*", default=list(FUZZERS),
                        help=f"any of {', '.join(FUZZERS)} (default: all)")
    args = parser.parse_args()
    unknown = set(args.instruments) - set(FUZZERS)
    if unknown:
        parser.error(f"unknown instrument(s) {', '.join(sorted(unknown))}")
    logging.disable(logging.CRITICAL)  # pymodbus logs every skipped frame
    for name in args.instruments:
        start = time.monotonic()
        report = FUZZERS[name](args.replies, seed=args.seed)
        print("\n".join(report.lines()))
        print(f"  wrong values accepted in detectable classes: {report.wrong_detectable}; "
              f"{args.replies / (time.monotonic() - start):.0f} replies/s\n", flush=True)


if __name__ == "__main__":
    main()
