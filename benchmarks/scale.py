"""Facility scale: many instruments over several PlantDS processes on one real Tango database.

Usage: python benchmarks/scale.py [--devices 100] [--processes 2] [--mix] [--polling]
                                  [--polling-threads 1] [--duration 30] [--keep-logs DIR]

Starts a private C++ DataBaseds on MariaDB (``deploy/tangodb.sh start``, state in a temporary
folder, free loopback port), simulator processes on loopback (each serving many compressors from
one asyncio loop; with ``--mix`` also chillers paced at 9600 baud and heat pumps on socketcand
with 20 kbit/s frame times), registers ``--devices`` devices in bulk with the tango.Database API
(``add_server`` per process, then the ``Url`` of each), starts ``--processes`` PlantDS processes at
once and prints:

* **start-up**: per process and in total, from the processes' start until every one of their
  devices is past INIT (State neither INIT nor UNKNOWN), read with DeviceProxy.state();
* **CPU per device**: user + system time of the PlantDS processes from /proc over the steady
  interval (``--duration``), in % of one core, divided by the devices;
* **events**: a client subscribed to change events of ``HoursOfOperation`` on every compressor
  (the simulated compressors run, so this float32 counter of hours changes every second, and
  ``abs_change`` 1e-6 lets each new value through): events per second against one per device per
  RefreshPeriod, and acquisition → client latency;
* **refresh punctuality**: spacing of consecutive acquisition times per device (the event
  timestamps, which are the snapshots' LastUpdate times), median / p99 / max against
  RefreshPeriod, and the share of gaps longer than 1.5 periods (a missed cycle);
* **poll punctuality** with ``--polling`` (the polled_attr of ``db/site-template.json`` for every device):
  the "Delta between last records" cppTango reports in each device's polling status, median /
  p99 / max against the polling period.

Bounded: start-up waits at most 60 s + 0.2 s per device, every call has a timeout. Everything it
starts (database, simulators, servers) is stopped at the end, on Ctrl-C, SIGTERM and errors.
Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import tango

from plantds.server import demo
from plantds.server.processes import console_script, stop_process

ROOT = Path(__file__).resolve().parents[1]
TANGODB_SH = ROOT / "deploy" / "tangodb.sh"
REFRESH_MS = 1000
EVENT_ATTRIBUTE = "HoursOfOperation"
DEVICES_PER_SIMULATOR_PROCESS = 500
CLASSES = {"cpa": "CryomechCPA", "chiller": "ColeParmerChiller", "heatpump": "RotexHPSU"}
DEMO_DEVICE = {"cpa": "plant/compressor/1", "chiller": "plant/chiller/1",
               "heatpump": "plant/heatpump/1"}
NOT_READY = (tango.DevState.INIT, tango.DevState.UNKNOWN)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Stopped(Exception):
    """SIGTERM: stop like Ctrl-C."""


# ---------------------------------------------------------------------------- simulator host
def serve_simulators(counts: dict[str, int]) -> int:
    """Child process: serve the instruments, print their Urls as one JSON line, run until stdin
    closes or SIGTERM."""
    from plantds.devices.coleparmer.simulator import ChillerSimulator
    from plantds.devices.cryomech import protocol as cpa_protocol
    from plantds.devices.cryomech.simulator import CpaSimulator
    from plantds.devices.rotex.simulator import HpsuSimulator

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    # Every compressor in one asyncio loop: a pymodbus server and a relay per port, no thread each.
    cpas = [CpaSimulator() for _ in range(counts.get("cpa", 0))]

    async def serve_all() -> None:
        await asyncio.gather(*(sim._serve() for sim in cpas))  # noqa: SLF001 - one loop for all

    cpa_thread = threading.Thread(target=asyncio.run, args=(serve_all(),), daemon=True)
    cpa_thread.start()
    others: list = []
    try:
        deadline = time.monotonic() + 60 + 0.1 * len(cpas)
        while any(sim.port is None for sim in cpas):
            if time.monotonic() > deadline or not cpa_thread.is_alive():
                raise RuntimeError("the compressor simulators did not start")
            time.sleep(0.05)
        for sim in cpas:
            sim.force_state(cpa_protocol.RUNNING)  # running: the hours count, events flow
        for _ in range(counts.get("chiller", 0)):
            chiller = ChillerSimulator("Polystat", baudrate=9600)
            chiller.start()
            others.append(chiller)
        for _ in range(counts.get("heatpump", 0)):
            others.append(HpsuSimulator(socketcand_port=0, bitrate=20_000).start())
        urls = {
            "cpa": [sim.url for sim in cpas],
            "chiller": [sim.url for sim in others if isinstance(sim, ChillerSimulator)],
            "heatpump": [sim.urls[0] for sim in others if isinstance(sim, HpsuSimulator)],
        }
        print(json.dumps(urls), flush=True)
        done.wait()
    finally:
        for sim in others:
            sim.stop()

        def stop_all() -> None:
            for sim in cpas:
                if sim._stopped is not None:  # noqa: SLF001
                    sim._stopped.set()  # noqa: SLF001

        if cpas and cpas[0]._loop is not None:  # noqa: SLF001
            cpas[0]._loop.call_soon_threadsafe(stop_all)  # noqa: SLF001
        cpa_thread.join(30)
    return 0


# ---------------------------------------------------------------------------- the run
@dataclass
class Device:
    name: str
    kind: str
    url: str
    process: int
    proxy: tango.DeviceProxy | None = None


@dataclass
class Process:
    index: int
    devices: list[Device]
    popen: subprocess.Popen | None = None
    ready_s: float | None = None
    log: Path | None = None

    @property
    def instance(self) -> str:
        return f"scale{self.index}"


@dataclass
class Events:
    lock: threading.Lock = field(default_factory=threading.Lock)
    received: list[tuple[str, float, float]] = field(default_factory=list)  # device, stamp, at
    errors: int = 0
    first_error: str = ""

    def push(self, event: tango.EventData) -> None:
        at = time.time()
        if event.err or event.attr_value is None:
            self.errors += 1
            if event.err and not self.first_error:
                self.first_error = f"{event.device.dev_name()}: {event.errors[0].desc.strip()}"
            return
        stamp = event.attr_value.time.totime()
        with self.lock:
            self.received.append((event.device.dev_name(), stamp, at))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = q / 100 * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def tangodb(command: str, state: Path) -> str:
    done = subprocess.run(["bash", str(TANGODB_SH), command], capture_output=True, text=True,
                          env={**os.environ, "PLANTDS_STATE": str(state)}, timeout=180)
    if done.returncode != 0:
        raise RuntimeError(f"deploy/tangodb.sh {command} failed: {done.stderr.strip()}")
    return done.stdout


def demo_polling() -> dict[str, list[str]]:
    """polled_attr of each class's device in the demo configuration."""
    servers = demo.demo_config()["servers"]["PlantDS"][demo.DEMO_INSTANCE]
    polled = {}
    for kind, name in DEMO_DEVICE.items():
        props = servers[CLASSES[kind]][name]["properties"]
        polled[kind] = props["polled_attr"]
    return polled


def plan(args: argparse.Namespace) -> dict[str, int]:
    if not args.mix:
        return {"cpa": args.devices}
    chillers = heatpumps = args.devices // 10
    return {"cpa": args.devices - chillers - heatpumps, "chiller": chillers, "heatpump": heatpumps}


def start_simulators(counts: dict[str, int], stack: ExitStack, state: Path
                     ) -> tuple[dict[str, list[str]], list[int]]:
    total = sum(counts.values())
    hosts = max(1, math.ceil(total / DEVICES_PER_SIMULATOR_PROCESS))
    shares = [{k: n // hosts + (1 if i < n % hosts else 0) for k, n in counts.items()}
              for i in range(hosts)]
    popens = []
    for i, share in enumerate(shares):
        log = open(state / f"simulators{i}.log", "wb")
        stack.callback(log.close)
        popen = subprocess.Popen(
            [sys.executable, __file__, "--serve-simulators", json.dumps(share)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
        stack.callback(stop_process, popen, 30.0)
        stack.callback(popen.stdin.close)
        popens.append(popen)
    urls: dict[str, list[str]] = {k: [] for k in CLASSES}
    for popen in popens:
        line = popen.stdout.readline()
        if not line:
            raise RuntimeError(f"a simulator process failed; see {state}/simulators*.log")
        for kind, got in json.loads(line).items():
            urls[kind] += got
    return urls, [popen.pid for popen in popens]


def register(db: tango.Database, processes: list[Process], polling: bool,
             polling_threads: int) -> float:
    polled = demo_polling() if polling else {}
    start = time.perf_counter()
    for proc in processes:
        if polling_threads > 1:  # cppTango's admin device property (default 1 thread)
            db.put_device_property(f"dserver/PlantDS/{proc.instance}",
                                   {"polling_threads_pool_size": [str(polling_threads)]})
        infos = []
        for dev in proc.devices:
            info = tango.DbDevInfo()
            info.name, info._class, info.server = dev.name, CLASSES[dev.kind], f"PlantDS/{proc.instance}"
            infos.append(info)
        db.add_server(f"PlantDS/{proc.instance}", infos, with_dserver=True)
        for dev in proc.devices:
            props = {"Url": [dev.url], "RefreshPeriod": [str(REFRESH_MS)]}
            if dev.kind in polled:
                props["polled_attr"] = polled[dev.kind]
            db.put_device_property(dev.name, props)
            if dev.kind == "cpa":
                db.put_device_attribute_property(
                    dev.name, {EVENT_ATTRIBUTE: {"abs_change": ["1e-6"]}})
    return time.perf_counter() - start


def ready(dev: Device, tango_host: str) -> bool:
    try:
        if dev.proxy is None:
            dev.proxy = tango.DeviceProxy(f"tango://{tango_host}/{dev.name}")
            dev.proxy.set_timeout_millis(3000)
        return dev.proxy.state() not in NOT_READY
    except tango.DevFailed:
        return False


def start_servers(processes: list[Process], tango_host: str, stack: ExitStack, state: Path,
                  timeout_s: float) -> float:
    env = {**os.environ, "TANGO_HOST": tango_host}
    start = time.monotonic()
    for proc in processes:
        proc.log = state / f"{proc.instance}.log"
        out = open(proc.log, "wb")
        stack.callback(out.close)
        proc.popen = subprocess.Popen(
            [console_script("PlantDS"), proc.instance, "-ORBendPoint", "giop:tcp:127.0.0.1:0"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
        stack.callback(stop_process, proc.popen, 30.0)
    pending = {proc.index: list(proc.devices) for proc in processes}
    while pending and time.monotonic() - start < timeout_s:
        for proc in processes:
            if proc.index not in pending:
                continue
            if proc.popen.poll() is not None:
                raise RuntimeError(f"PlantDS/{proc.instance} exited ({proc.popen.returncode}); "
                                   f"see {proc.log}")
            pending[proc.index] = [d for d in pending[proc.index] if not ready(d, tango_host)]
            if not pending[proc.index]:
                proc.ready_s = time.monotonic() - start
                del pending[proc.index]
        time.sleep(0.2)
    for index, devices in pending.items():
        print(f"  PlantDS/scale{index}: {len(devices)} device(s) still in INIT/UNKNOWN after "
              f"{timeout_s:.0f} s, e.g. {devices[0].name}")
    return time.monotonic() - start


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def poll_deltas(devices: list[Device]) -> tuple[dict[str, list[float]], str]:
    """Delta between the last records of every polled object per class, from cppTango's
    polling status; the first problem met, if any."""
    deltas: dict[str, list[float]] = {}
    problem = ""
    for dev in devices:
        try:
            status = dev.proxy.polling_status()
        except tango.DevFailed as exc:
            problem = problem or f"{dev.name}: {exc.args[0].desc.strip()}"
            continue
        if not status:
            problem = problem or f"{dev.name}: nothing polled"
        for text in status:
            match = re.search(r"Delta between last records \(in ms\) = ([\d, ]+)", text, re.I)
            period = re.search(r"Polling period \(ms\) = (\d+)", text, re.I)
            if match and period:  # lateness: each delta less its object's own period
                deltas.setdefault(CLASSES[dev.kind], []).extend(
                    float(v) - int(period.group(1)) for v in match.group(1).split(",") if v.strip())
            else:
                problem = problem or f"{dev.name}: {text!r}"
    return deltas, problem


def run(args: argparse.Namespace) -> int:
    counts = plan(args)
    per_kind = ", ".join(f"{n} {CLASSES[k]}" for k, n in counts.items() if n)
    print(f"Facility scale: {per_kind} over {args.processes} PlantDS process(es), one C++ "
          f"DataBaseds on MariaDB, RefreshPeriod {REFRESH_MS} ms"
          f"{', demo polling' if args.polling else ''}"
          f"{f' ({args.polling_threads} polling threads)' if args.polling_threads > 1 else ''}; "
          f"{os.cpu_count()} CPU(s), "
          f"load {open('/proc/loadavg').read().split()[0]} at start\n", flush=True)
    state = Path(tempfile.mkdtemp(prefix="plantds-scale-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, state, ignore_errors=True)
        if args.keep_logs:
            stack.callback(shutil.copytree, state, args.keep_logs, dirs_exist_ok=True,
                           ignore=shutil.ignore_patterns("mariadb*"))
        out = tangodb("start", state)
        stack.callback(tangodb, "stop", state)
        tango_host = out.strip().splitlines()[-1].split("=", 1)[1]
        os.environ["TANGO_HOST"] = tango_host
        db = tango.Database()

        t = time.perf_counter()
        urls, simulator_pids = start_simulators(counts, stack, state)
        print(f"Simulators up in {time.perf_counter() - t:.1f} s")
        devices = [Device(f"scale/{kind}/{i + 1}", kind, url, 0)
                   for kind in CLASSES for i, url in enumerate(urls[kind])]
        processes = [Process(i + 1, devices[i::args.processes]) for i in range(args.processes)]
        for proc in processes:
            for dev in proc.devices:
                dev.process = proc.index
        registered = register(db, processes, args.polling, args.polling_threads)
        print(f"Registered {len(devices)} devices in {registered:.1f} s "
              f"({registered / len(devices) * 1e3:.1f} ms per device)", flush=True)

        timeout = 60 + 0.2 * len(devices)
        total = start_servers(processes, tango_host, stack, state, timeout)
        print("\nStart-up until every device is past INIT (target <= 60 s for the whole facility):")
        for proc in processes:
            took = "not ready" if proc.ready_s is None else f"{proc.ready_s:.1f} s"
            print(f"  PlantDS/{proc.instance:<9}{len(proc.devices):>5} devices  {took}")
        print(f"  total {total:.1f} s for {len(devices)} devices", flush=True)

        events = Events()
        cpas = [d for d in devices if d.kind == "cpa" and d.proxy is not None]
        t = time.perf_counter()
        subscribed = 0
        for dev in cpas:
            try:
                dev.proxy.subscribe_event(EVENT_ATTRIBUTE, tango.EventType.CHANGE_EVENT, events.push)
                subscribed += 1
            except tango.DevFailed as exc:
                print(f"  cannot subscribe to {dev.name}: {exc.args[0].desc.strip()}")
        print(f"\nSubscribed to {subscribed} change events in {time.perf_counter() - t:.1f} s",
              flush=True)

        time.sleep(3.0)  # past the subscriptions' first events
        pids = [proc.popen.pid for proc in processes]
        others = {"simulators": simulator_pids,
                  "DataBaseds + MariaDB": [int((state / f).read_text()) for f in
                                           ("databaseds.pid", "mariadbd.pid")]}
        cpu_before = [cpu_seconds(pid) for pid in pids]
        others_before = {k: sum(map(cpu_seconds, v)) for k, v in others.items()}
        with events.lock:
            events.received.clear()
            errors_before = events.errors
        window_start = time.monotonic()
        time.sleep(args.duration)
        window = time.monotonic() - window_start
        cpu_after = [cpu_seconds(pid) for pid in pids]
        others_share = {k: (sum(map(cpu_seconds, v)) - others_before[k]) / window * 100
                        for k, v in others.items()}
        with events.lock:
            received = list(events.received)
            errors_in_window = events.errors - errors_before
        load = open("/proc/loadavg").read().split()[0]

        report_cpu(processes, cpu_before, cpu_after, window, load)
        print("  beside them: " + ", ".join(f"{k} {v:.1f} %" for k, v in others_share.items()))
        report_events(received, subscribed, window, events, errors_in_window)
        if args.polling:
            sample = devices[:: max(1, len(devices) // 100)]
            report_polling(*poll_deltas(sample), len(sample))
    return 0


def report_cpu(processes: list[Process], before: list[float], after: list[float], window: float,
               load: str) -> None:
    print(f"\nCPU over a steady {window:.0f} s (% of one core; load average {load} at the end):")
    total = 0.0
    for proc, b, a in zip(processes, before, after):
        share = (a - b) / window * 100
        total += share
        print(f"  PlantDS/{proc.instance:<9}{share:>6.1f} %  ({share / len(proc.devices):.3f} % "
              f"per device)")
    devices = sum(len(p.devices) for p in processes)
    print(f"  all processes {total:.1f} % for {devices} devices: {total / devices:.3f} % per "
          f"device; one core would carry ~{100 / (total / devices):.0f} devices at this rate")


def report_events(received: list[tuple[str, float, float]], subscribed: int, window: float,
                  events: Events, errors_in_window: int) -> None:
    expected = subscribed * 1000 / REFRESH_MS
    print(f"\nChange events of {EVENT_ATTRIBUTE} ({subscribed} devices):")
    print(f"  {len(received) / window:.1f} events/s received, limit {expected:.1f}/s "
          f"(one per device per RefreshPeriod); error events: {errors_in_window} in the steady "
          f"interval, {events.errors} since subscribing"
          + (f"; the first: {events.first_error}" if events.first_error else ""))
    if not received:
        return
    latency = [(at - stamp) * 1e3 for _, stamp, at in received]
    print(f"  acquisition -> client: median {statistics.median(latency):.1f} ms, "
          f"p99 {percentile(latency, 99):.1f} ms, max {max(latency):.1f} ms")
    stamps: dict[str, list[float]] = {}
    for name, stamp, _ in received:
        stamps.setdefault(name, []).append(stamp)
    spacing = [(b - a) * 1e3 for s in stamps.values() for a, b in zip(sorted(s), sorted(s)[1:])]
    if spacing:
        missed = sum(1 for s in spacing if s > 1.5 * REFRESH_MS)
        print(f"  refresh spacing (LastUpdate of consecutive snapshots): median "
              f"{statistics.median(spacing):.0f} ms, p99 {percentile(spacing, 99):.0f} ms, max "
              f"{max(spacing):.0f} ms against RefreshPeriod {REFRESH_MS} ms; "
              f"{missed / len(spacing) * 100:.1f} % of gaps > 1.5 periods")


def report_polling(deltas: dict[str, list[float]], problem: str, sampled: int) -> None:
    print(f"\nPolling (the demo's polled_attr: 1 s, slow values 5-10 s), {sampled} devices "
          f"sampled; delta between records less the object's polling period (0 = on time):")
    if problem:
        print(f"  (not every status read: {problem})")
    for cls, values in deltas.items():
        late = sum(1 for v in values if v > 0.5 * REFRESH_MS) / len(values) * 100
        print(f"  {cls:<18} median {statistics.median(values):+.0f} ms, p99 "
              f"{percentile(values, 99):+.0f} ms, max {max(values):+.0f} ms; {late:.1f} % late "
              f"by > 500 ms ({len(values)} deltas)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100, help="instruments in all")
    parser.add_argument("--processes", type=int, default=2, help="PlantDS processes")
    parser.add_argument("--mix", action="store_true",
                        help="10 %% chillers and 10 %% heat pumps among the devices")
    parser.add_argument("--polling", action="store_true", help="apply the demo's polling")
    parser.add_argument("--polling-threads", type=int, default=1,
                        help="cppTango polling threads per process (polling_threads_pool_size)")
    parser.add_argument("--duration", type=float, default=30.0, help="steady interval, s")
    parser.add_argument("--keep-logs", type=Path, help="copy the servers' logs here")
    parser.add_argument("--serve-simulators", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_simulators:
        return serve_simulators(json.loads(args.serve_simulators))
    if args.devices < 1 or not 1 <= args.processes <= args.devices or args.duration <= 0:
        parser.error("need --devices >= 1, 1 <= --processes <= --devices, --duration > 0")
    if args.mix and args.devices < 10:
        parser.error("--mix needs --devices >= 10")

    def terminate(*_) -> None:
        raise Stopped()

    signal.signal(signal.SIGTERM, terminate)
    try:
        return run(args)
    except (KeyboardInterrupt, Stopped):
        print("\nstopped; everything started was stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"scale.py: {exc}", file=sys.stderr)
        return 1
    finally:
        sys.stdout.flush()


if __name__ == "__main__":
    code = main()
    # Skip the interpreter's teardown: PyTango's event threads for hundreds of subscriptions to
    # servers that are gone can hold it for minutes; everything started is already stopped.
    os._exit(code)
