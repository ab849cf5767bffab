"""Cole-Parmer / NESLAB chiller: NC transactions per refresh and refresh time against the
wire-time limit.

Usage: python benchmarks/chiller_refresh.py [--cycles 30] [--baud 9600] [--family Polystat RTE]

Each case starts a :class:`ChillerSimulator` that paces the line at ``--baud`` in both directions
(8N1, 10 bits per character: it answers once the request could have arrived, and sends the reply
at line speed), connects an :class:`NcDriver` to it over ``socket://`` and times ``--cycles``
calls of ``NcDriver.refresh()``:

* **fast**: what the driver reads every RefreshPeriod: temperatures, set point and status;
* **full**: what it reads when the slow values are due (every SlowRefreshPeriod, and right
  after a write): the same plus every limit and PID term of the family. Reading everything
  every cycle, as most NC scripts do, costs this on every refresh.

Transactions are counted from the request frames the simulator received, not from the driver.
The wire-time limit of a refresh is computed from them: request bytes + reply bytes (a value
reply is 9 bytes, a status reply 6 + the family's status length) at 10 bits per character. It
is a lower bound: the unit's processing time and the RS-485 turnaround (up to 5 ms each way)
are not known or not counted. The simulator reproduces the bytes' time on the line and nothing
else, so measured/limit stays at or above 1 and what lies above it is the software's cost.

Prints figures only; nothing is asserted. Everything it starts is stopped before it returns.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

from plantds.devices.coleparmer import protocol
from plantds.devices.coleparmer.driver import FAST_PARAMETERS, NcDriver
from plantds.devices.coleparmer.simulator import ChillerSimulator
from timing import median_p95  # benchmarks/timing.py (scripts run from benchmarks/)

BITS_PER_CHAR = 10  # 8N1: start + 8 data + stop
VALUE_REPLY_DATA = 3  # qualifier + 16-bit value
# SlowRefreshPeriod / RefreshPeriod of the defaults (30 s / 1 s): one full refresh in 30.
DEFAULT_SLOW_RATIO = 30


@dataclass(frozen=True)
class Transaction:
    """One request seen on the wire, with its size and the size of the reply it calls for."""

    command: int
    request_bytes: int
    reply_bytes: int


def transaction(family: protocol.Family, request: bytes) -> Transaction:
    """Size a received request and its reply; anything but a read is reported, not skipped."""
    frame = protocol.decode_frame(request)
    reads = {p.read for p in family.parameters.values()}
    if frame.command == protocol.READ_STATUS:
        data = family.status_length
    elif frame.command in reads and not frame.data:
        data = VALUE_REPLY_DATA
    else:
        raise ValueError(f"not a read of a {family.name}: {request.hex(' ')}")
    return Transaction(frame.command, len(request), protocol.HEADER_LENGTH + data + 1)


def wire_time_s(transactions: list[Transaction], baud: int) -> float:
    chars = sum(t.reply_bytes + t.request_bytes for t in transactions)
    return chars * BITS_PER_CHAR / baud


@dataclass
class Result:
    case: str
    baud: int
    times_s: list[float]
    transactions: list[list[Transaction]]  # per refresh, as the simulator received them

    def count(self) -> str:
        counts = sorted({len(t) for t in self.transactions})
        return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"

    def limit_s(self) -> float:
        return statistics.median(wire_time_s(t, self.baud) for t in self.transactions)


def run_case(family_name: str, plan: str, baud: int, cycles: int) -> Result:
    family = protocol.family(family_name)
    # slow_refresh_s 0: the slow values are due at every refresh; 1 h: never after the first
    slow_refresh_s = 0.0 if plan == "full" else 3600.0
    with ChillerSimulator(family_name, baudrate=baud) as sim:
        # retries=0: a lost reply must show as a failure, not as a slow refresh
        driver = NcDriver(sim.url, family=family_name, baudrate=baud, timeout=1.0, retries=0,
                          slow_refresh_s=slow_refresh_s)
        try:
            driver.connect()
            driver.refresh()  # warm-up, and the first slow read of the "fast" plan
            times, seen = [], []
            for _ in range(cycles):
                sim.requests.clear()
                start = time.perf_counter()
                driver.refresh()
                times.append(time.perf_counter() - start)
                seen.append([transaction(family, r) for r in sim.requests])
        finally:
            driver.close()
    return Result(f"{family_name} {plan}", baud, times, seen)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def print_results(results: list[Result]) -> None:
    columns = ("trans.", "median", "p95", "min", "max", "limit", "med/limit")
    print("Measured per refresh (ms); transactions counted from the frames the simulator received:")
    print(f"  {'case':<18}" + "".join(f"{c:>10}" for c in columns))
    for r in results:
        t = r.times_s
        median, p95 = median_p95(t)
        limit = r.limit_s()
        figures = (r.count(), ms(median), ms(p95), ms(min(t)), ms(max(t)),
                   ms(limit), f"{median / limit:.2f}")
        print(f"  {r.case:<18}" + "".join(f"{f:>10}" for f in figures))
    print("  limit: request + reply bytes on the line at the baud rate (the physical floor; the")
    print("  simulator paces both directions, so med/limit >= 1 is the software's overhead).")
    print()


def print_savings(results: list[Result]) -> None:
    print(f"Line time per refresh, reading everything every cycle vs slow values every "
          f"{DEFAULT_SLOW_RATIO}th refresh (SlowRefreshPeriod 30 s, RefreshPeriod 1 s):")
    print(f"  {'family':<12}{'every cycle':>14}{'fast+slow':>12}{'saving':>10}{'line busy at 1 s':>19}")
    by_case = {r.case: r for r in results}
    for fast in (r for r in results if r.case.endswith(" fast")):
        family = fast.case.removesuffix(" fast")
        full = by_case[f"{family} full"]
        mixed = ((DEFAULT_SLOW_RATIO - 1) * fast.limit_s() + full.limit_s()) / DEFAULT_SLOW_RATIO
        print(f"  {family:<12}{ms(full.limit_s()) + ' ms':>14}{ms(mixed) + ' ms':>12}"
              f"{f'{full.limit_s() / mixed:.1f}x':>10}{f'{mixed * 100:.1f} %':>19}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=30, help="refreshes timed per case")
    parser.add_argument("--baud", type=int, default=9600, help="baud rate the simulator paces at")
    parser.add_argument("--family", nargs="+", choices=list(protocol.FAMILIES),
                        default=["Polystat", "RTE"], help="families to measure")
    args = parser.parse_args(argv)
    if args.cycles < 1:
        parser.error(f"--cycles {args.cycles} must be >= 1")
    if args.baud <= 0:
        parser.error(f"--baud {args.baud}: the rate must be positive")

    print(f"Chiller refresh: NcDriver against ChillerSimulator paced at {args.baud} baud, "
          f"{args.cycles} refreshes per case; fast = {', '.join(FAST_PARAMETERS)} + status\n")
    results = [run_case(family, plan, args.baud, args.cycles)
               for family in args.family for plan in ("fast", "full")]
    print_results(results)
    print_savings(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
