"""Start-up against the number of devices in one PlantDS process: does it grow linearly?

Usage: python benchmarks/startup.py [--counts 1 10 100 200] [--no-polling]

For each count: a fresh embedded Tango DB (pytango-db's PyDatabaseds, sqlite, free loopback
port), that many compressors registered in one ``PlantDS`` instance with the site template's
compressor configuration (its device properties, attribute properties and, unless
``--no-polling``, its polled_attr), all on one simulated CPA (it answers every unit id); then
``PlantDS`` is started and two times are taken from its start: every device exported (ping
answers) and every device past INIT (State neither INIT nor UNKNOWN). Printed per count, per
device, and as a ratio to the 10-device start against the linear bound (count / 10).

Also counts the DB's attribute-property history rows a start adds (0 expected: an unchanged
start writes nothing). Prints figures only; nothing is asserted. Everything it starts is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tango

from plantds.devices.cryomech.simulator import CpaSimulator
from plantds.server import config
from plantds.server.processes import console_script, embedded_database, stop_process
from plantds.server.testing import free_ports, wait_for

INSTANCE = "startup"
TIMEOUT_S = 600.0


def template_compressor() -> dict:
    servers = json.loads(config.bundled("site-template.json").read_text())["servers"]
    return next(iter(servers["PlantDS"]["site1"]["CryomechCPA"].values()))


def register(db: tango.Database, count: int, url: str, polling: bool) -> list[str]:
    block = template_compressor()
    names = [f"bench/compressor/{i}" for i in range(1, count + 1)]
    for name in names:
        info = tango.DbDevInfo()
        info.name, info._class, info.server = name, "CryomechCPA", f"PlantDS/{INSTANCE}"
        db.add_device(info)
        props = {k: v for k, v in block["properties"].items() if polling or k != "polled_attr"}
        props["Url"] = [url]
        db.put_device_property(name, props)
        db.put_device_attribute_property(name, block.get("attribute_properties", {}))
    return names


def history_rows(sqlite_file: Path) -> int:
    """Rows in the DB's attribute-property history (pytango-db's sqlite schema)."""
    with contextlib.closing(sqlite3.connect(sqlite_file)) as con:
        return con.execute("select count(*) from property_attribute_device_hist").fetchone()[0]


def wait_all(names: list[str], tango_host: str, ready, deadline: float) -> None:
    """Wait until ``ready(proxy)`` holds for every device, or raise at ``deadline``."""
    for name in names:
        wait_for(lambda: ready(tango.DeviceProxy(f"tango://{tango_host}/{name}")),
                 timeout=max(0.0, deadline - time.monotonic()), what=f"{name} ready")


def measure(count: int, polling: bool, work: Path) -> tuple[float, float, int]:
    tango_host = f"127.0.0.1:{free_ports(1)}"
    sqlite_file = work / f"tango-{count}.db"
    with CpaSimulator(port=0) as sim, embedded_database(tango_host, sqlite_file, work / f"db-{count}.log"):
        db = tango.Database(*tango_host.split(":"))
        names = register(db, count, sim.url, polling)
        rows_before = history_rows(sqlite_file)
        log = open(work / f"PlantDS-{count}.log", "ab")
        start = time.monotonic()
        proc = subprocess.Popen(
            [console_script("PlantDS"), INSTANCE, "-ORBendPoint", "giop:tcp:127.0.0.1:0"],
            env=dict(os.environ, TANGO_HOST=tango_host), stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = start + TIMEOUT_S
            wait_all(names, tango_host, lambda p: p.ping() >= 0, deadline)
            exported = time.monotonic() - start
            wait_all(names, tango_host,
                     lambda p: p.state() not in (tango.DevState.INIT, tango.DevState.UNKNOWN), deadline)
            live = time.monotonic() - start
        finally:
            stop_process(proc, timeout=30)
            log.close()
        return exported, live, history_rows(sqlite_file) - rows_before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 10, 100, 200])
    parser.add_argument("--no-polling", action="store_true", help="leave out the template's polled_attr")
    args = parser.parse_args()
    polling = not args.no_polling
    print(f"PlantDS start-up, one process, compressors with the site template's configuration"
          f"{' and polling' if polling else ''}; one simulated CPA serves them all")
    print(f"{'devices':>8} {'exported s':>11} {'live s':>8} {'ms/device':>10} {'÷ 10-dev':>9} "
          f"{'linear':>7} {'DB rows':>8}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="plantds-startup-") as work:
        for count in args.counts:
            exported, live, rows = measure(count, polling, Path(work))
            results[count] = live
            base = results.get(10)
            ratio = f"{live / base:9.1f}" if base else f"{'-':>9}"
            bound = f"{count / 10:7.1f}" if base else f"{'-':>7}"
            print(f"{count:8d} {exported:11.2f} {live:8.2f} {1000 * live / count:10.1f} {ratio} {bound} {rows:8d}",
                  flush=True)
    print("(÷ 10-dev: this start over the 10-device start; linear: count / 10, the bound the "
          "issue sets; DB rows: attribute-property history rows the start added)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
