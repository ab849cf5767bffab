"""Link outages and a soak: recovery time per instrument, and process resources over time.

Usage: python benchmarks/outage_soak.py [--cycles 10] [--soak-s 60] [--sample-s 5]

**Outages**: each instrument's driver runs in an :class:`IOWorker` (refresh every 50 ms) against
its simulator on loopback. One cycle: the instrument goes silent or drops the connection (CPA
offline, chiller serial mode off, heat pump offline), the worker is waited for until it reports
the link lost, the instrument comes back, and the time until the worker's next good refresh is
the recovery time. Recovery includes the worker's reconnect backoff (0.5 s doubling to 10 s while
the outage lasts), which is why it is not the link's own reconnect time. Median and maximum are
printed per instrument.

**Soak**: the three workers refresh at 50 ms for ``--soak-s`` seconds while every simulator
drops its connections every 5 s; RSS, threads and open file descriptors of this process are
printed every ``--sample-s`` seconds. Flat columns mean nothing leaks per cycle or reconnect.

Prints figures only; nothing is asserted. Loopback only; everything it starts is stopped.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import threading
import time
from typing import Any, Callable

from plantds.devices.coleparmer.driver import NcDriver
from plantds.devices.coleparmer.simulator import ChillerSimulator
from plantds.devices.cryomech.driver import CpaDriver
from plantds.devices.cryomech.simulator import CpaSimulator
from plantds.devices.rotex.driver import HpsuDriver
from plantds.devices.rotex.simulator import HpsuSimulator
from plantds.server.worker import Comm, IOWorker

PERIOD_S = 0.05
DEADLINE_S = 60.0


class Instrument:
    """A simulator, its worker, and how to take the instrument away and bring it back."""

    def __init__(self, name: str, sim: Any, driver: Any, outage: Callable[[bool], None]):
        self.name, self.sim, self.outage = name, sim, outage
        self.worker = IOWorker(name, driver, refresh_period_s=PERIOD_S)

    def drop(self) -> None:
        self.sim.drop_connections()


def instruments() -> list[Instrument]:
    cpa = CpaSimulator(start_s=0.3, stop_s=0.3)
    cpa.start()
    chiller = ChillerSimulator(port=0)
    chiller.start()
    heat_pump = HpsuSimulator(socketcand_port=0, latency_s=0.005, drift=False).start()
    made = [
        Instrument("cpa", cpa, CpaDriver(cpa.url, timeout=0.3, retries=0),
                   lambda out: cpa.set_online(not out)),
        Instrument("chiller", chiller, NcDriver(chiller.url, timeout=0.3, retries=0),
                   lambda out: chiller.set_serial_mode(not out)),
        Instrument("heatpump", heat_pump,
                   HpsuDriver(heat_pump.urls[0], commands=["t_hs", "mode_01"], timeout=0.3,
                              retries=0),
                   lambda out: heat_pump.set_online(not out)),
    ]
    for instrument in made:
        instrument.worker.start()
    return made


def wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {DEADLINE_S:g} s")
        time.sleep(0.005)


def outage_cycles(instrument: Instrument, cycles: int) -> list[float]:
    worker = instrument.worker
    wait(lambda: worker.comm is Comm.CONNECTED and worker.last_update > 0, f"{instrument.name} up")
    recoveries = []
    for _ in range(cycles):
        instrument.outage(True)
        wait(lambda: worker.comm is not Comm.CONNECTED, f"{instrument.name} outage seen")
        instrument.outage(False)
        back = time.time()
        wait(lambda: worker.comm is Comm.CONNECTED and worker.last_update > back,
             f"{instrument.name} recovered")
        recoveries.append(worker.last_update - back)
    return recoveries


def resources() -> tuple[float, int, int]:
    """RSS in MiB, threads and open file descriptors of this process (Linux /proc)."""
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    rss_mib = int(status["VmRSS"].split()[0]) / 1024
    return rss_mib, int(status["Threads"]), len(os.listdir("/proc/self/fd"))


def soak(made: list[Instrument], seconds: float, sample_s: float) -> None:
    print(f"\nsoak: {seconds:g} s, refresh every {PERIOD_S * 1000:g} ms, connections dropped "
          "every 5 s")
    print(f"{'t [s]':>6} {'RSS [MiB]':>10} {'threads':>8} {'fds':>5} {'refresh errors':>15}")
    start = time.monotonic()
    next_drop = start + 5.0
    next_sample = start
    while (now := time.monotonic()) - start <= seconds:
        if now >= next_sample:
            rss, threads, fds = resources()
            errors = sum(i.worker.errors for i in made)
            print(f"{now - start:6.0f} {rss:10.1f} {threads:8} {fds:5} {errors:15}", flush=True)
            next_sample += sample_s
        if now >= next_drop:
            for instrument in made:
                instrument.drop()
            next_drop += 5.0
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10, help="outage cycles per instrument")
    parser.add_argument("--soak-s", type=float, default=60.0)
    parser.add_argument("--sample-s", type=float, default=5.0)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # every outage is logged by the worker and pymodbus
    made = instruments()
    try:
        print(f"outages: {args.cycles} per instrument; recovery = instrument back -> next good refresh")
        for instrument in made:
            times = outage_cycles(instrument, args.cycles)
            print(f"  {instrument.name:<9} recovery median {statistics.median(times):6.3f} s   "
                  f"max {max(times):6.3f} s", flush=True)
        soak(made, args.soak_s, args.sample_s)
    finally:
        for instrument in made:
            instrument.worker.stop()
            instrument.sim.stop()


if __name__ == "__main__":
    threading.current_thread().name = "outage-soak"
    main()
