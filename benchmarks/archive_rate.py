"""HDB++ archiving: rows stored per second for N attributes at 1 Hz, and the latency from an
instrument change to its row in the archive.

Usage: flock /tmp/plantds-demo-ports.lock python benchmarks/archive_rate.py [--attributes 10 100]
       [--window 20] [--changes 10]

Everything is real and on loopback: an embedded Tango DB (PyDatabaseds), HDB++ from
deploy/hdbpp.sh (built once, cached; PostgreSQL 15 with the timescale schema, hdb++es-srv,
hdb++cm-srv), attributes registered with the configuration manager as `plantds archive apply`
does.

* **rate**: a load device (benchmarks/archive_load_device.py) pushes an archive event with a new
  value on each of its attributes every second. For each N of ``--attributes``, N of them are
  archived and the rows whose data_time falls in a ``--window`` of seconds are counted: the
  subscriber keeps up when rows/s ≈ N. The subscriber's own AttributeRecordFreq (rows/min) and
  store times are printed beside.
* **latency**: the demo plant's compressor simulator (the fixed demo ports: hence the lock)
  raises and clears a warning ``--changes`` times; from each change at the panel to the
  WarningCode row being readable in the archive. Split into panel → the device's acquisition
  (data_time: RefreshPeriod and polling, 1 s each in the site template) and acquisition → row
  visible (the event path and the store).

Prints figures only; nothing is asserted. Everything it starts is stopped before it returns.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import tango

from plantds.devices.cryomech import protocol
from plantds.devices.cryomech.simulator import CpaSimulator
from plantds.server import archiving, config, demo, history
from plantds.server.hdbpp import running_archiver
from plantds.server.processes import embedded_database, plantds_server, stop_process
from timing import median_p95  # benchmarks/timing.py (scripts run from benchmarks/)

LOAD_DEVICE = "bench/archive/load"
LOAD_SERVER = "archive_load_device/bench"  # Tango names the server after the script
OIL_HIGH = 1 << protocol.WARNING_BITS.index("Oil temperature high")
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def load_device(attributes: int, log: Path):
    info = tango.DbDevInfo()
    info.name, info._class, info.server = LOAD_DEVICE, "ArchiveLoad", LOAD_SERVER
    db = tango.Database()
    db.add_device(info)
    db.put_device_property(LOAD_DEVICE, {"Attributes": [str(attributes)], "PeriodMs": ["1000"]})
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, str(HERE / "archive_load_device.py"), "bench",
                                 "-ORBendPoint", "giop:tcp:127.0.0.1:0"], stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(tango.DevFailed):
                    tango.DeviceProxy(LOAD_DEVICE).ping()
                    break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the load device did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
            yield
        finally:
            stop_process(proc)


class Archive:
    def __init__(self, url: str):
        db = history.db_from_url(url)
        self.conn = psycopg2.connect(host=db["host"], port=db["port"], dbname=db["database"],
                                     user=db["user"], password=db["password"])
        self.conn.autocommit = True

    def count(self, names: list[str], start: dt.datetime, end: dt.datetime) -> int:
        with self.conn.cursor() as c:
            c.execute("SELECT count(*) FROM att_scalar_devdouble d JOIN att_conf USING (att_conf_id) "
                      "WHERE att_name = ANY(%s) AND d.data_time >= %s AND d.data_time < %s", (names, start, end))
            return c.fetchone()[0]

    def row_after(self, name: str, value: int, after: dt.datetime):
        """data_time of the first row of ``name`` with ``value`` acquired after ``after``, or None."""
        with self.conn.cursor() as c:
            c.execute("SELECT table_name, att_conf_id FROM att_conf WHERE att_name = %s", (name,))
            table, conf_id = c.fetchone()
            c.execute(f"SELECT data_time FROM {table} WHERE att_conf_id = %s AND value_r = %s "
                      "AND data_time > %s ORDER BY 1 LIMIT 1", (conf_id, value, after))
            row = c.fetchone()
            return row[0] if row else None


def measure_rate(manager, archive, es, tango_host, counts, window) -> None:
    print(f"\nrate: rows stored per second, each attribute pushing 1 archive event/s ({window} s windows)")
    print(f"{'N':>5} {'rows/s':>8} {'rows/s/N':>9} {'ES rows/min':>12} {'store ms (min-max)':>19}")
    added = 0
    for n in counts:
        names = [f"tango://{tango_host}/{LOAD_DEVICE}/value{i:03d}".lower() for i in range(n)]
        for name in names[added:]:
            manager.apply(archiving.ArchiveEntry(name, es.name()))
        added = n
        deadline = time.monotonic() + 60
        while es.AttributeStartedNumber < n + 1 and time.monotonic() < deadline:  # + WarningCode
            time.sleep(0.2)
        time.sleep(3)  # past the subscriptions' first events
        start = dt.datetime.now(dt.timezone.utc)
        time.sleep(window + 2)  # rows of the window's last second may still be on their way
        end = start + dt.timedelta(seconds=window)
        rows = archive.count(names, start, end)
        # the subscriber's statistics are INVALID (None) until its StatisticsTimeWindow has passed
        freq = es.AttributeRecordFreq
        low, high = es.AttributeMinStoreTime, es.AttributeMaxStoreTime
        store = f"{low * 1000:.1f}-{high * 1000:.1f}" if low is not None and high is not None else "-"
        print(f"{n:>5} {rows / window:>8.1f} {rows / window / n:>9.2f} "
              f"{'-' if freq is None else f'{freq:.0f}':>12} {store:>19}", flush=True)


def measure_latency(archive, sim: CpaSimulator, tango_host: str, changes: int) -> None:
    name = f"tango://{tango_host}/plant/compressor/1/warningcode"
    total, acquire, store = [], [], []
    for i in range(changes):
        mask = OIL_HIGH if i % 2 == 0 else 0
        t0 = dt.datetime.now(dt.timezone.utc)
        m0 = time.monotonic()
        sim.set_warnings(mask)
        deadline = m0 + 30
        while (data_time := archive.row_after(name, mask, t0)) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        visible = time.monotonic()
        if data_time is None:
            print(f"  change {i}: no row within 30 s")
            continue
        total.append(visible - m0)
        acquire.append((data_time - t0).total_seconds())
        store.append(total[-1] - acquire[-1])
        time.sleep(1.5)  # let the next change be a separate refresh
    sim.set_warnings(0)
    print(f"\nlatency: compressor warning raised/cleared at the panel → WarningCode row readable in the archive ({len(total)} changes)")
    for label, values in (("panel → row visible", total), ("panel → device acquisition (data_time)", acquire),
                          ("acquisition → row visible", store)):
        if values:
            med, p95 = median_p95(values)
            print(f"  {label:40s} median {med * 1000:7.0f} ms  p95 {p95 * 1000:7.0f} ms  max {max(values) * 1000:7.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attributes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    counts = sorted(args.attributes)
    tango_host = f"127.0.0.1:{free_port()}"
    os.environ["TANGO_HOST"] = tango_host
    with tempfile.TemporaryDirectory(prefix="plantds-archive-bench-") as work, contextlib.ExitStack() as stack:
        work = Path(work)
        stack.enter_context(embedded_database(tango_host, work / "tango.db", work / "databaseds.log"))
        for path in demo.config_files(work):
            config.load(path, tango_host)
        sims = [stack.enter_context(sim) for sim in demo.simulators()]
        devices = demo.demo_devices()
        stack.enter_context(plantds_server("demo", list(devices), tango_host, work / "PlantDS-demo.log"))
        stack.enter_context(load_device(counts[-1], work / "load.log"))
        print("HDB++ (deploy/hdbpp.sh):", flush=True)
        info = stack.enter_context(running_archiver(work, tango_host, purge=True))
        manager = archiving.Manager(info["HDBPP_CM_DEVICE"])
        es = tango.DeviceProxy(info["HDBPP_ES_DEVICE"])
        archive = Archive(info["HDBPP_DB"])
        stack.callback(archive.conn.close)
        manager.apply(archiving.ArchiveEntry(f"tango://{tango_host}/plant/compressor/1/warningcode", es.name()))
        cpa = next(s for s in sims if isinstance(s, CpaSimulator))
        measure_rate(manager, archive, es, tango_host, counts, args.window)
        measure_latency(archive, cpa, tango_host, args.changes)


if __name__ == "__main__":
    main()
