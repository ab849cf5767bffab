"""The Tango contract, measured from a client: command latency, reads under writers, events,
read-after-write freshness.

Usage: python benchmarks/command_latency.py [--writes 30] [--port 11999]

Starts an embedded Tango DB (PyDatabaseds) on loopback, the simulators and one PlantDS process:

* ``cpa-tcp``   Cryomech CPA over Modbus TCP (unpaced)
* ``cpa-rtu``   the same over RTU framing paced at 115200 baud
* ``chiller``   Polystat over NC paced at 9600 baud
* ``hpsu-cand`` heat pump over socketcand, the default monitoring Commands, nodes answering in
  20 ms, plus one silent node (a listed command it never answers)
* ``hpsu-elm``  the same over ELM327 on TCP, on the same bus: each heat pump device is a second
  client keeping the other's nodes busy, so the ELM327's receive filter shows their replies too

and prints, per device and request (all through DeviceProxy with PyTango's default 3 s timeout):

* latency median / p99 / max of the commands and writes, against the bound of the contract:
  the request's own wire time + one transaction already in flight + 100 ms (the wire times are
  measured from the driver's own refresh: one transaction's time = refresh time / transactions);
* attribute read latency p99 while 5 threads write to the same device;
* instrument change → client change event latency (chiller bath temperature), against
  RefreshPeriod;
* read-after-write freshness: of N write→read pairs, how many read the value written.

Figures only; nothing is asserted. Everything it starts is stopped before it returns.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import tango

from plantds.devices.coleparmer.simulator import ChillerSimulator
from plantds.devices.cryomech.simulator import CpaSimulator
from plantds.devices.rotex.simulator import HpsuSimulator
from plantds.server.processes import embedded_database
from plantds.server.testing import run_plantds, wait_for

TIMEOUT_S = 3.0  # PyTango's default client timeout
MARGIN_S = 0.1


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(call) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def transaction_s(proxy: tango.DeviceProxy, transactions: int) -> float:
    """One transaction's wire time, from the device's own refresh time (RoundTripTime)."""
    samples = []
    for _ in range(5):
        samples.append(proxy.RoundTripTime / 1000.0)
        time.sleep(0.3)
    return statistics.median(samples) / transactions


def report(name: str, what: str, samples: list[float], own: int, tx_s: float) -> None:
    bound = own * tx_s + tx_s + MARGIN_S
    med, p99, top = statistics.median(samples), percentile(samples, 0.99), max(samples)
    print(f"  {name:10} {what:26} median {med * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  "
          f"max {top * 1000:7.1f} ms  bound {bound * 1000:7.1f} ms  p99/bound {p99 / bound:5.2f}  "
          f"timeouts 0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=30)
    parser.add_argument("--port", type=int, default=11999)
    args = parser.parse_args()
    tango_host = f"127.0.0.1:{args.port}"
    import os
    os.environ["TANGO_HOST"] = tango_host
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        stack.enter_context(embedded_database(tango_host, Path(tmp) / "db.sqlite", Path(tmp) / "db.log"))
        cpa = stack.enter_context(CpaSimulator(start_s=0.3, stop_s=0.3))
        rtu = stack.enter_context(CpaSimulator(framer="rtu", baudrate=115200, start_s=0.3, stop_s=0.3))
        chiller = ChillerSimulator("Polystat", precision=0.1, setpoint=20.0, baudrate=9600,
                                   time_constant_s=5.0)
        chiller.start()
        stack.callback(chiller.stop)
        hpsu = HpsuSimulator(socketcand_port=0, elm_port=0, latency_s=0.02, drift=False, seed=1,
                             bitrate=20_000).start()  # CAN frames take their 20 kbit/s time
        stack.callback(hpsu.stop)
        hpsu.mute("tliq2")  # one silent node for a listed command
        cand = next(u for u in hpsu.urls if u.startswith("socketcand://"))
        elm = next(u for u in hpsu.urls if u.startswith("elm327+tcp://"))
        devices = {
            "bench/cpa/tcp": ("CryomechCPA", {"Url": cpa.url}),
            "bench/cpa/rtu": ("CryomechCPA", {"Url": rtu.url}),
            "bench/chiller/1": ("ColeParmerChiller", {"Url": chiller.url}),
            "bench/hpsu/cand": ("RotexHPSU", {"Url": cand, "OwnCanId": 0x680}),
            "bench/hpsu/elm": ("RotexHPSU", {"Url": elm, "OwnCanId": 0x681, "RefreshPeriod": 3000}),
        }
        props = {"bench/chiller/1": {"InternalTemperature": {"abs_change": ["0.01"]}}}
        proxies = stack.enter_context(run_plantds(tango_host, devices, Path(tmp), props))
        for name, proxy in proxies.items():
            wait_for(lambda p=proxy: p.state() not in (tango.DevState.INIT, tango.DevState.UNKNOWN),
                     timeout=60, what=name)
        print(f"PyTango {tango.__version__}, client timeout {TIMEOUT_S:g} s, {args.writes} requests each")
        print("Command and write latency against the bound (own transactions + one in flight + 100 ms):")
        p = proxies
        # CPA: one Modbus transaction per refresh, one per On/Off
        for key, name in (("bench/cpa/tcp", "cpa-tcp"), ("bench/cpa/rtu", "cpa-rtu")):
            tx = transaction_s(p[key], 1)
            samples = []
            for i in range(args.writes // 2):
                samples.append(timed(p[key].On))
                wait_for(lambda d=p[key]: d.state() == tango.DevState.ON, timeout=10)
                samples.append(timed(p[key].Off))
                wait_for(lambda d=p[key]: d.state() == tango.DevState.OFF, timeout=10)
            report(name, "On/Off", samples, 1, tx)
        # chiller: a fast refresh is 4 transactions; a write is two (the precision read, the echo)
        tx = transaction_s(p["bench/chiller/1"], 4)
        values = [19.0 + (i % 10) / 10 for i in range(args.writes)]
        report("chiller", "write Setpoint",
               [timed(lambda v=v: p["bench/chiller/1"].write_attribute("Setpoint", v)) for v in values], 2, tx)
        # heat pump: a write is a write frame + one read-back; ReadValue one read
        for key, name in (("bench/hpsu/cand", "hpsu-cand"), ("bench/hpsu/elm", "hpsu-elm")):
            d = p[key]
            answered = len([n for n in d.get_attribute_list() if n.islower() and not n.endswith("_label")])
            tx = transaction_s(d, max(1, answered - 1))
            slopes = [0.3 + (i % 5) / 10 for i in range(args.writes)]
            report(name, "write heat_slope", [timed(lambda s=s: d.write_attribute("heat_slope", s)) for s in slopes], 2, tx)
            report(name, "ReadValue t_dhw", [timed(lambda: d.ReadValue("t_dhw")) for _ in range(args.writes)], 1, tx)
            report(name, "On/Off", [timed(c) for _ in range(args.writes // 2) for c in (d.Off, d.On)], 2, tx)

        print("Read latency while 5 threads write to the same device:")
        for key, attr, write in (
            ("bench/chiller/1", "InternalTemperature", lambda d, i: d.write_attribute("Setpoint", 20 + i % 3)),
            ("bench/hpsu/cand", "t_hs", lambda d, i: d.write_attribute("heat_slope", 0.4 + (i % 3) / 10)),
        ):
            stop = threading.Event()

            def writer(k=key, w=write):
                d, i = tango.DeviceProxy(k), 0
                while not stop.is_set():
                    try:
                        w(d, i)
                    except tango.DevFailed:
                        pass
                    i += 1

            threads = [threading.Thread(target=writer) for _ in range(5)]
            for t in threads:
                t.start()
            reader = tango.DeviceProxy(key)
            reads = [timed(lambda: reader.read_attribute(attr)) for _ in range(200)]
            stop.set()
            for t in threads:
                t.join()
            print(f"  {key:16} {attr:20} p50 {statistics.median(reads) * 1000:6.2f} ms  "
                  f"p99 {percentile(reads, 0.99) * 1000:6.2f} ms  max {max(reads) * 1000:6.2f} ms (200 reads)")

        print("Instrument change -> client change event (chiller bath warming, RefreshPeriod 1000 ms):")
        d = p["bench/chiller/1"]
        arrivals: list[tuple[float, float]] = []
        sub = d.subscribe_event("InternalTemperature", tango.EventType.CHANGE_EVENT,
                                lambda e: e.err or arrivals.append((time.time(), e.attr_value.time.totime())))
        d.SetSetpoint(30.0)
        time.sleep(8)
        d.unsubscribe_event(sub)
        d.SetSetpoint(20.0)
        lag = [arrived - stamped for arrived, stamped in arrivals[1:]]
        if lag:
            print(f"  acquisition -> client: median {statistics.median(lag) * 1000:6.1f} ms  "
                  f"max {max(lag) * 1000:6.1f} ms over {len(lag)} events; instrument change -> "
                  f"acquisition is at most one RefreshPeriod (1000 ms), ratio of the worst case "
                  f"{(max(lag) + 1.0) / 1.0:4.2f}x the period")

        print("Read-after-write freshness:")
        d.poll_attribute("Setpoint", 3000)
        fresh = 0
        for i in range(100):
            value = 18.0 + (i % 20) / 10
            d.write_attribute("Setpoint", value)
            fresh += d.read_attribute("Setpoint").value == value
        d.stop_poll_attribute("Setpoint")
        print(f"  chiller Setpoint (polled every 3 s): {fresh}/100 reads right after the write "
              "returned the value written")


if __name__ == "__main__":
    main()
