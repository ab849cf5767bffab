"""Rotex HPSU: values per second per transport, against pyHPSU's per-value costs and the bus limit.

Usage: python benchmarks/hpsu_rate.py [--cycles 10] [--latency-ms 20] [--elm-timeout-ms 100]
                                      [--background-rate 0] [--transport virtual socketcand ...]

Each transport reaches one :class:`HpsuSimulator` whose nodes answer ``--latency-ms`` after a
request (the HPSU answers in ~18-23 ms, §8.1): the python-can virtual bus (in
process), the socketcand server and the ELM327 emulator (both on loopback TCP). An
:class:`HpsuDriver` tracks the table's "fast" commands of the default monitoring set and times
``--cycles`` calls of ``refresh()``; the slow ones (settings, counters) are read once before.

Requests are counted from the frames the simulator received from the driver's CAN id, not from
the driver. Values the bus brought anyway (the display's polling, with ``--background-rate``)
count as values without a request.

Compared with:

* **pyHPSU** per value (§8.2): ~2.1 s over ELM327 (a fixed 50 ms sleep and a 1 s
  read timeout for each of ATSH and the payload), 20-30 ms over SocketCAN (its happy path;
  a CLI run adds process start and, with ELM327, a 3.2 s adapter init on every call). The
  socketcand and virtual rows are set against the SocketCAN figure.
* **the bus limit** per value: the node's latency plus the request and reply frames at
  20 kbit/s (103 bits each for 7 data bytes without stuffing, up to 125 with worst-case
  stuffing). The simulator's bus carries every frame for its frame time at 20 kbit/s
  (its own stuff bits counted), one frame at a time, so no transport can come out below 1.

Section numbers (§) refer to ``docs/rotex-hpsu-can.md``.

Prints figures only; nothing is asserted. Everything it starts is stopped before it returns.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

from plantds.devices.rotex import protocol
from plantds.devices.rotex.driver import HpsuDriver
from plantds.devices.rotex.simulator import HpsuSimulator
from plantds.devices.rotex.table import DEFAULT_MONITORING, load_commands

OWN_ID = 0x680
BITRATE = 20_000
FRAME_BITS = 103          # SOF, 11-bit id, control, 7 data bytes, CRC, ACK, EOF, interframe space
FRAME_BITS_STUFFED = 125  # with the worst-case stuff bits (one per 4 bits of SOF..CRC)
TRANSPORTS = ("virtual", "socketcand", "elm327+tcp")
# pyHPSU's seconds per value (low, high) for the same kind of link.
PYHPSU_S = {"virtual": (0.020, 0.030), "socketcand": (0.020, 0.030), "elm327+tcp": (2.1, 2.1)}
PYHPSU_DRIVER = {"virtual": "SocketCAN", "socketcand": "SocketCAN", "elm327+tcp": "ELM327"}


@dataclass
class Result:
    transport: str
    values: int  # acquired in the timed cycles
    lost: int    # unanswered (retries=0)
    cycle_s: list[float]
    requests: int
    passive: int

    @property
    def s_per_value(self) -> float:
        return sum(self.cycle_s) / self.values


def bus_limit_s(latency_s: float, frame_bits: int = FRAME_BITS) -> float:
    """Seconds per value on the bus: request frame, the node's latency, reply frame."""
    return latency_s + 2 * frame_bits / BITRATE


def run_case(transport: str, args: argparse.Namespace, fast: list[str]) -> Result:
    with HpsuSimulator(
        channel="virtual://hpsu-bench", socketcand_port=0, elm_port=0,
        latency_s=args.latency_ms / 1000, background_rate_hz=args.background_rate,
        elm_timeout_s=args.elm_timeout_ms / 1000, drift=False, bitrate=BITRATE,
    ) as sim:
        url = next(u for u in sim.urls if u.startswith(transport + "://"))
        # retries=0: a lost reply must show as a failure, not as a slow value
        driver = HpsuDriver(url, own_id=OWN_ID, commands=list(DEFAULT_MONITORING), timeout=1.0,
                            retries=0, slow_period_s=3600.0)
        try:
            driver.connect()
            driver.refresh()  # warm-up, and the one read of the slow commands
            sent_before = len(sim.frames_from(OWN_ID))
            passive_before = driver.counters.passive_updates + driver.counters.skipped
            times, acquired, lost = [], 0, 0
            for _ in range(args.cycles):
                start = time.perf_counter()
                values = driver.refresh()
                times.append(time.perf_counter() - start)
                got = sum(1 for name in fast if values.get(name) is not None)
                acquired, lost = acquired + got, lost + len(fast) - got
            frames = sim.frames_from(OWN_ID)[sent_before:]
            reads = sum(1 for data in frames if data[0] & 0x0F == protocol.MSG_READ)
            passive = driver.counters.passive_updates + driver.counters.skipped - passive_before
        finally:
            driver.close()
    return Result(transport, acquired, lost, times, reads, passive)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def print_results(results: list[Result], latency_s: float) -> None:
    limit = bus_limit_s(latency_s)
    limit_stuffed = bus_limit_s(latency_s, FRAME_BITS_STUFFED)
    print(f"Bus limit per value: {ms(limit)} ms ({1 / limit:.1f} values/s); "
          f"{ms(limit_stuffed)} ms with worst-case bit stuffing.\n")
    columns = ("values", "lost", "requests", "free", "cycle ms", "ms/value", "values/s",
               "pyHPSU ms", "x pyHPSU", "/ limit")
    print(f"  {'transport':<12}" + "".join(f"{c:>11}" for c in columns))
    for r in results:
        low, high = PYHPSU_S[r.transport]
        pyhpsu = ms(low) if low == high else f"{ms(low)}-{ms(high)}"
        speedup = (f"{low / r.s_per_value:.0f}" if low == high
                   else f"{low / r.s_per_value:.1f}-{high / r.s_per_value:.1f}")
        figures = (r.values, r.lost, r.requests, r.passive, ms(statistics.median(r.cycle_s)),
                   ms(r.s_per_value), f"{1 / r.s_per_value:.1f}", pyhpsu, speedup,
                   f"{r.s_per_value / limit:.2f}")
        print(f"  {r.transport:<12}" + "".join(f"{f!s:>11}" for f in figures))
    print()
    print("  values: acquired in the timed cycles; lost: unanswered (no retries); requests: reads")
    print("  the simulator received from us;")
    print("  free: values taken from traffic we did not ask for; x pyHPSU: how many times faster")
    print("  than pyHPSU's per-value cost over "
          + ", ".join(sorted({f"{t}: {PYHPSU_DRIVER[t]}" for t in PYHPSU_DRIVER})) + ";")
    print("  / limit: measured time per value over the bus limit without stuffing (the simulator's")
    print("  bus carries each frame for its frame time, so 1 is the floor).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10, help="refreshes timed per transport")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="node reply latency")
    parser.add_argument("--elm-timeout-ms", type=float, default=100.0,
                        help="the ELM327 emulator's reply window after each frame it shows")
    parser.add_argument("--background-rate", type=float, default=0.0,
                        help="display / other client requests per second (0 = quiet bus)")
    parser.add_argument("--transport", nargs="+", choices=TRANSPORTS, default=list(TRANSPORTS))
    args = parser.parse_args(argv)
    if args.cycles < 1:
        parser.error(f"--cycles {args.cycles} must be >= 1")
    if args.latency_ms < 0 or args.elm_timeout_ms <= 0 or args.background_rate < 0:
        parser.error("latency, ELM327 window and background rate must not be negative")

    table = load_commands()
    fast = [name for name in DEFAULT_MONITORING if table[name].refresh == "fast"]
    print(f"HPSU values per second: HpsuDriver against HpsuSimulator, node latency "
          f"{args.latency_ms:g} ms, ELM327 window {args.elm_timeout_ms:g} ms, background "
          f"{args.background_rate:g} requests/s, {args.cycles} refreshes of {len(fast)} fast "
          f"values per transport\n")
    results = [run_case(transport, args, fast) for transport in args.transport]
    print_results(results, args.latency_ms / 1000)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
