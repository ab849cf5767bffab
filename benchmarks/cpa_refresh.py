"""Cryomech CPA: Modbus requests per refresh and refresh time against the wire-time limit.

Usage: python benchmarks/cpa_refresh.py [--cycles 50] [--baud 115200]
       (--baud takes several rates, e.g. ``--baud 115200 9600``)

Each case starts a :class:`CpaSimulator` (CPA2 format, 53 registers), connects a
:class:`CpaDriver` to it and times ``--cycles`` reads:

* **block**: ``CpaDriver.refresh()``, the driver's one FC04 read of the whole block;
* **naive**: one FC04 read per quantity, registers 30001-30028 (15 requests), as PKG,
  BBekker/CryostatControl and Atomize poll (§9 #8). Sent through the driver's own
  transaction path (same pymodbus client, link lock and checks) so only the request plan differs.
  It does not decode, which costs the block read a few microseconds more.

Cases: Modbus TCP without pacing (loopback: what the software costs), then RTU framing paced at
each ``--baud`` (the simulator delivers every byte, both ways, when it would have finished on the
serial line, and keeps the 3.5-character silence before each frame).

Requests are counted on the wire, from the bytes the simulator received, not from the driver.
The wire-time limit of a refresh is computed from those requests: for each one, request bytes +
reply bytes (FC04 of n registers: request 8, reply 5 + 2n, so 8 + 111 for the block), plus the RTU
inter-frame silence of 3.5 characters before the request and before the reply, at 10 bits per
character (start, 8 data, stop). That is a lower bound: the panel's processing time is unknown and
not counted, and the Modbus spec lets devices above 19200 baud use a fixed 1.75 ms silence.
The simulator reproduces exactly these bytes and silences, so measured/limit stays at or above 1
and what lies above it is the software's cost.

Section numbers (§) refer to ``docs/cryomech-cpa-modbus.md``.

Prints figures only; nothing is asserted. Everything it starts is stopped before it returns.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from plantds.devices.cryomech import protocol as p
from plantds.devices.cryomech.driver import CpaDriver
from plantds.devices.cryomech.simulator import CpaSimulator
from pymodbus.framer.rtu import FramerRTU
from timing import median_p95  # benchmarks/timing.py (scripts run from benchmarks/)

BITS_PER_CHAR = 10  # 8N1: start + 8 data + stop
SILENCE_CHARS = 3.5  # RTU t3.5 before every frame, request and reply alike
FC04 = 0x04

BLOCK_PLAN = ((p.BLOCK_START, p.BLOCK_COUNT_CPA2),)
# One read per quantity the naive clients poll: everything up to the running hours (30028).
NAIVE_PLAN = tuple(
    (r.pdu, r.words)
    for r in p.REGISTERS
    if r.register <= p.REGISTER["HoursOfOperation"].register
)


@dataclass(frozen=True)
class Request:
    """One FC04 request seen on the wire, with the byte sizes of it and of its reply."""

    address: int
    count: int
    request_bytes: int
    reply_bytes: int


def rtu_request(address: int, count: int) -> Request:
    # unit, FC, address, count, CRC | unit, FC, byte count, 2n data bytes, CRC
    return Request(address, count, 8, 5 + 2 * count)


def crc16(frame: bytes) -> bytes:
    """Modbus RTU CRC as it goes on the wire (pymodbus's own, high byte first)."""
    return FramerRTU.compute_CRC(frame).to_bytes(2, "big")


def parse_rtu(stream: bytes) -> list[Request]:
    """The FC04 requests in a stream of RTU frames; anything else is reported, not skipped."""
    requests = []
    for i in range(0, len(stream), 8):
        frame = stream[i : i + 8]
        if len(frame) != 8 or frame[1] != FC04 or crc16(frame[:6]) != frame[6:]:
            raise ValueError(f"not an RTU FC04 request at byte {i}: {frame.hex(' ')}")
        address, count = struct.unpack(">HH", frame[2:6])
        requests.append(rtu_request(address, count))
    return requests


def parse_tcp(stream: bytes) -> list[Request]:
    """The FC04 requests in a stream of Modbus TCP (MBAP) frames."""
    requests, i = [], 0
    while i < len(stream):
        length = struct.unpack(">H", stream[i + 4 : i + 6])[0]  # unit id + PDU
        frame = stream[i : i + 6 + length]
        if length != 6 or len(frame) != 12 or frame[7] != FC04:
            raise ValueError(f"not a Modbus TCP FC04 request at byte {i}: {frame.hex(' ')}")
        address, count = struct.unpack(">HH", frame[8:12])
        # MBAP header 7 + FC + byte count + 2n data bytes
        requests.append(Request(address, count, 12, 9 + 2 * count))
        i += len(frame)
    return requests


def wire_time_s(requests: list[Request], baud: int) -> float:
    """Shortest time these transactions can take on an RTU line at ``baud``."""
    chars = sum(r.request_bytes + r.reply_bytes + 2 * SILENCE_CHARS for r in requests)
    return chars * BITS_PER_CHAR / baud


@dataclass
class Result:
    case: str
    times_s: list[float]
    requests: list[list[Request]]  # per cycle, as seen on the wire
    baud: int | None  # None: unpaced TCP, no wire limit

    def requests_per_refresh(self) -> str:
        counts = sorted({len(r) for r in self.requests})
        return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"

    def limit_s(self) -> float | None:
        if self.baud is None:
            return None
        return statistics.median(wire_time_s(r, self.baud) for r in self.requests)


def measure(
    case: str, sim: CpaSimulator, read: Callable[[], object], cycles: int, baud: int | None
) -> Result:
    parse = parse_tcp if sim.framer == "socket" else parse_rtu
    read()  # warm-up: the first transaction of a connection is not a refresh like the others
    times, requests = [], []
    for _ in range(cycles):
        sim.received_bytes(clear=True)
        start = time.perf_counter()
        read()
        times.append(time.perf_counter() - start)
        requests.append(parse(sim.received_bytes()))
    return Result(case, times, requests, baud)


def run_case(label: str, cycles: int, framer: str, baud: int | None) -> tuple[Result, Result]:
    """Block refresh and naive reads against one simulator; both stopped before returning."""
    with CpaSimulator(framer=framer, baudrate=baud) as sim:
        # retries=0: a timeout must show as a failure, not as a slow refresh
        driver = CpaDriver(sim.url, timeout=2.0, retries=0)
        try:
            driver.connect()

            def naive() -> list[list[int]]:
                return [driver._read_input(address, count) for address, count in NAIVE_PLAN]

            block = measure(f"{label}, block", sim, driver.refresh, cycles, baud)
            naive_result = measure(f"{label}, naive", sim, naive, cycles, baud)
        finally:
            driver.close()
    return block, naive_result


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def ratio(measured: float, limit: float | None) -> str:
    return "-" if limit is None else f"{measured / limit:.2f}"


def print_limits(bauds: list[int]) -> None:
    print("Wire-time limit per refresh, RTU (10 bits/char, 3.5-char silence before each frame):")
    header = f"  {'plan':<26}{'requests':>9}{'req B':>7}{'reply B':>9}{'silence ch':>12}"
    print(header + "".join(f"{f'{b} baud':>14}" for b in bauds))
    for name, plan in (("block (driver)", BLOCK_PLAN), ("naive (one per quantity)", NAIVE_PLAN)):
        reqs = [rtu_request(address, count) for address, count in plan]
        row = (
            f"  {name:<26}{len(reqs):>9}{sum(r.request_bytes for r in reqs):>7}"
            f"{sum(r.reply_bytes for r in reqs):>9}{2 * SILENCE_CHARS * len(reqs):>12g}"
        )
        print(row + "".join(f"{ms(wire_time_s(reqs, b)) + ' ms':>14}" for b in bauds))
    print()


def print_results(results: list[Result]) -> None:
    print("Measured per refresh (ms); requests counted on the wire:")
    columns = ("requests", "median", "p95", "min", "max")
    columns += ("limit", "med/limit")
    print(f"  {'case':<20}" + "".join(f"{c:>10}" for c in columns))
    for r in results:
        t = r.times_s
        median, p95 = median_p95(t)
        limit = r.limit_s()
        figures = (
            r.requests_per_refresh(),
            ms(median), ms(p95), ms(min(t)), ms(max(t)), ms(limit), ratio(median, limit),
        )  # fmt: skip
        print(f"  {r.case:<20}" + "".join(f"{f:>10}" for f in figures))
    print("  limit: bytes + 3.5-char silences on a real line (the physical floor, which the")
    print("  simulator reproduces: med/limit >= 1 is the software's overhead).")
    print()
    print("Naive / block:       measured median   wire-time limit")
    for block, naive in zip(results[::2], results[1::2]):
        label = block.case.removesuffix(", block")
        slower = statistics.median(naive.times_s) / statistics.median(block.times_s)
        limits = "-" if block.baud is None else f"{naive.limit_s() / block.limit_s():.1f}x"
        print(f"  {label:<20}{f'{slower:.1f}x':>16}{limits:>18}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50, help="reads timed per case")
    parser.add_argument(
        "--baud", type=int, nargs="+", default=[115200], help="RTU baud rate(s) to pace at"
    )
    args = parser.parse_args(argv)
    if args.cycles < 1:
        parser.error(f"--cycles {args.cycles} must be >= 1")
    if any(b <= 0 for b in args.baud):
        parser.error(f"--baud {args.baud}: rates must be positive")

    print(
        f"Cryomech CPA refresh: CpaDriver against CpaSimulator (CPA2 format, "
        f"{p.BLOCK_COUNT_CPA2} registers), {args.cycles} reads per case\n"
    )
    print_limits(args.baud)
    results = [*run_case("TCP unpaced", args.cycles, "socket", None)]
    for baud in args.baud:
        results += run_case(f"RTU {baud}", args.cycles, "rtu", baud)
    print_results(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
