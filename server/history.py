"""``plantds history``: archived values read back from HDB++ (the timescale/PostgreSQL backend).

The archive is found the way the event subscriber finds it: from the ``LibConfiguration`` of an
``HdbEventSubscriber`` in the Tango DB (its ``connect_string``), unless ``--db`` names it. Values
are read with pyhdbpp's ``TimescaleDbReader`` (its connection pool, configuration parsing and
table layout) through one query of our own: pyhdbpp 2.1.3's ``get_attributes_values`` returns
only VALID rows without errors (ALARM and WARNING values and the INVALID rows of an outage would
vanish), and it matches names as substrings, so ``highpressure`` finds ``highpressureaverage``
too and returns nothing for either.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import tango

# HDB++ stores Tango's AttrQuality as its integer value.
QUALITIES = {int(q): str(q).replace("ATTR_", "") for q in tango.AttrQuality.values.values()}
FORMATS = ("table", "CSV", "JSON", "PNG")
QUALITY_MARKERS = {"ALARM": ("red", "x"), "WARNING": ("orange", "^"), "INVALID": ("grey", "v"), "CHANGING": ("blue", "s")}
DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# pyhdbpp 2.1.3 takes a second pooled connection inside its own calls: a pool of 1 fails with
# "connection pool exhausted".
POOL_SIZE = 4


class HistoryError(Exception):
    """A user error: one line, no traceback."""


@dataclass(frozen=True)
class Row:
    time: dt.datetime  # data_time: when the device acquired the value (UTC)
    value: object      # read value; None for an error row
    quality: str       # VALID, INVALID, ALARM, CHANGING, WARNING
    error: str         # the event's error description, "" when none


def parse_time(text: str, now: dt.datetime) -> dt.datetime:
    """``1h``, ``30m``, ``2d`` (ago) or an ISO date/time (local time unless it says otherwise)."""
    text = text.strip()
    if text == "now":
        return now
    parts = DURATION.findall(text)
    if parts and "".join(f"{n}{u}" for n, u in parts) == text.replace(" ", ""):
        return now - dt.timedelta(seconds=sum(float(n) * SECONDS[u] for n, u in parts))
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise HistoryError(f"{text!r} is neither a duration (30m, 1h, 2d) nor an ISO time") from None
    return when.astimezone(dt.timezone.utc) if when.tzinfo is None else when


def db_from_libconfiguration(lines: list[str]) -> dict:
    """pyhdbpp reader settings from an HdbEventSubscriber's LibConfiguration (``key=value``
    lines; the timescale backend's ``connect_string`` is libpq's ``key=value key=value``)."""
    props = dict(line.split("=", 1) for line in lines if "=" in line)
    if "libhdb++timescale" not in props.get("libname", "libhdb++timescale"):
        raise HistoryError(f"the archiver uses {props['libname']}: plantds history reads the timescale (PostgreSQL) backend only")
    settings = {**props, **dict(kv.split("=", 1) for kv in props.get("connect_string", "").split() if "=" in kv)}
    return {"host": settings.get("host", "localhost"), "port": int(settings.get("port", 5432)),
            "database": settings.get("dbname", "hdb"), "user": settings.get("user", ""),
            "password": settings.get("password", "")}


def db_from_url(url: str) -> dict:
    """``postgresql://user:password@host:port/dbname`` → reader settings."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise HistoryError(f"--db {url!r}: expected postgresql://user:password@host:port/dbname")
    return {"host": parts.hostname, "port": parts.port or 5432, "database": parts.path.lstrip("/") or "hdb",
            "user": unquote(parts.username or ""), "password": unquote(parts.password or "")}


def find_archive_db(archiver: str | None) -> dict:
    """The archive DB of ``archiver`` (default: the first running HdbEventSubscriber)."""
    db = tango.Database()
    if archiver is None:
        names = sorted(db.get_device_exported_for_class("HdbEventSubscriber"))
        if not names:
            raise HistoryError("no HdbEventSubscriber runs in this Tango DB: pass --db or --archiver")
        archiver = names[0]
    lines = list(db.get_device_property(archiver, "LibConfiguration")["LibConfiguration"])
    if not lines:
        raise HistoryError(f"{archiver} has no LibConfiguration property: pass --db")
    return db_from_libconfiguration(lines)


class Archive:
    """Reads rows of attributes from an HDB++ timescale archive, through pyhdbpp's reader."""

    def __init__(self, settings: dict):
        try:
            from pyhdbpp.timescaledb import TimescaleDbReader
        except ImportError:
            raise HistoryError("plantds history needs the archive extra: pip install 'plantds[archive]'") from None
        self.reader = TimescaleDbReader(**settings, connection_pool_max_conn=POOL_SIZE)
        if not hasattr(self.reader, "connection_pool"):  # pyhdbpp logs the error and carries on
            raise HistoryError(f"cannot connect to the archive at {settings['host']}:{settings['port']}/{settings['database']}")

    def _query(self, sql: str, params: tuple) -> list[tuple]:
        conn = self.reader.connection_pool.getconn()
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            self.reader.connection_pool.putconn(conn)

    def resolve(self, attribute: str) -> tuple[str, int, str]:
        """(full archived name, att_conf_id, data table) of ``attribute`` (d/f/m/a or full)."""
        name = attribute.lower()
        pattern = name if name.startswith("tango://") else f"tango://%/{name}"
        found = self._query("SELECT att_name, att_conf_id, table_name FROM att_conf WHERE lower(att_name) LIKE %s",
                            (pattern,))
        if not found:
            raise HistoryError(f"{attribute} is not in the archive (plantds archive status lists what is)")
        if len(found) > 1:
            raise HistoryError(f"{attribute} is archived from several Tango hosts: give the full name "
                               f"({', '.join(r[0] for r in found)})")
        return found[0]

    def rows(self, attribute: str, since: dt.datetime, until: dt.datetime) -> tuple[str, list[Row]]:
        name, conf_id, table = self.resolve(attribute)
        from psycopg2 import sql

        query = sql.SQL(
            "SELECT d.data_time, d.value_r, d.quality, e.error_desc FROM {table} d "
            "LEFT JOIN att_error_desc e ON e.att_error_desc_id = d.att_error_desc_id "
            "WHERE d.att_conf_id = %s AND d.data_time BETWEEN %s AND %s ORDER BY d.data_time"
        ).format(table=sql.Identifier(table))
        as_state = table.endswith("devstate")  # stored as DevState's integer
        return name, [
            Row(t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc),
                str(tango.DevState(value)) if as_state and value is not None else value,
                QUALITIES.get(quality, str(quality)), error or "")
            for t, value, quality, error in self._query(query, (conf_id, since, until))
        ]

    def close(self) -> None:
        self.reader.connection_pool.closeall()


def units(attributes: list[str]) -> dict[str, str]:
    """attribute → its unit from the attribute configuration ("" when not reachable or none)."""
    out = {}
    for attribute in attributes:
        device, _, name = short_name(attribute).rpartition("/")
        try:
            unit = tango.DeviceProxy(device).get_attribute_config(name).unit
        except tango.DevFailed:
            unit = ""
        out[attribute] = "" if unit in ("", "No unit") else unit
    return out


def short_name(attribute: str) -> str:
    """domain/family/member/attribute of a full tango:// name."""
    return attribute.split("/", 3)[3] if attribute.startswith("tango://") else attribute


def render_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    return "" if value is None else str(value)


def write_table(data: dict[str, list[Row]], out) -> None:
    for attribute, rows in data.items():
        print(f"{attribute}: {len(rows)} rows", file=out)
        for row in rows:
            line = f"  {row.time.astimezone().isoformat(sep=' ', timespec='milliseconds')}  {render_value(row.value):>12}  {row.quality}"
            print(line + (f"  {row.error}" if row.error else ""), file=out)


def write_csv(data: dict[str, list[Row]], out) -> None:
    writer = csv.writer(out)
    writer.writerow(["attribute", "time", "value", "quality", "error"])
    for attribute, rows in data.items():
        for row in rows:
            value = json.dumps(row.value) if isinstance(row.value, list) else render_value(row.value)
            writer.writerow([attribute, row.time.isoformat(), value, row.quality, row.error])


def write_json(data: dict[str, list[Row]], out) -> None:
    json.dump({attribute: [{"time": r.time.isoformat(), "value": r.value, "quality": r.quality, "error": r.error}
                           for r in rows] for attribute, rows in data.items()}, out, indent=1, default=str)
    out.write("\n")


def write_png(data: dict[str, list[Row]], path: Path, since: dt.datetime, until: dt.datetime) -> None:
    """A time plot, one panel per unit; values that were not VALID are marked with their quality."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit_of = units(list(data))
    panels: dict[str, list[str]] = {}
    for attribute in data:
        panels.setdefault(unit_of[attribute], []).append(attribute)
    fig, axes = plt.subplots(len(panels), 1, sharex=True, squeeze=False, figsize=(10, 1.5 + 2.5 * len(panels)))
    for ax, (unit, attributes) in zip(axes[:, 0], panels.items()):
        for attribute in attributes:
            points = [r for r in data[attribute] if isinstance(r.value, (int, float))]
            ax.step([r.time for r in points], [float(r.value) for r in points], where="post", marker=".",
                    label=short_name(attribute))
            for quality, (color, marker) in QUALITY_MARKERS.items():
                marked = [r for r in points if r.quality == quality]
                if marked:
                    ax.plot([r.time for r in marked], [float(r.value) for r in marked], linestyle="",
                            color=color, marker=marker, label=f"{short_name(attribute)} {quality}")
        ax.set_ylabel(unit or "value")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    axes[-1, 0].set_xlim(since, until)
    axes[-1, 0].set_xlabel("time (UTC)")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("attributes", nargs="+", metavar="ATTR",
                        help="domain/family/member/attribute (or tango://host:port/…)")
    parser.add_argument("--since", default="1h", help="start: a duration ago (30m, 1h, 2d) or an ISO time (default 1h)")
    parser.add_argument("--until", default="now", help="end: a duration ago or an ISO time (default now)")
    parser.add_argument("-o", "--output", nargs="+", metavar=("FORMAT", "FILE"), default=["table"],
                        help="table (default), CSV or JSON [FILE], or PNG FILE")
    parser.add_argument("--db", help="the archive: postgresql://user:password@host:port/dbname "
                                     "(default: an HdbEventSubscriber's LibConfiguration)")
    parser.add_argument("--archiver", help="the HdbEventSubscriber whose archive to read (default: the first registered)")


def run(args: argparse.Namespace) -> int:
    try:
        fmt, *target = args.output
        fmt = next((f for f in FORMATS if f.lower() == fmt.lower()), None)
        if fmt is None or len(target) > 1 or (fmt == "PNG" and not target):
            raise HistoryError(f"-o takes one of {', '.join(FORMATS)} and a FILE (PNG needs one)")
        now = dt.datetime.now(dt.timezone.utc)
        since, until = parse_time(args.since, now), parse_time(args.until, now)
        if since >= until:
            raise HistoryError(f"--since {args.since} is not before --until {args.until}")
        if not args.db and not os.environ.get("TANGO_HOST"):
            raise HistoryError("set TANGO_HOST (the archive is found from its event subscriber) or pass --db")
        logging.getLogger("pyhdbpp").setLevel(logging.WARNING)  # it logs every connection at INFO
        archive = Archive(db_from_url(args.db) if args.db else find_archive_db(args.archiver))
        try:
            data = dict(archive.rows(a, since, until) for a in args.attributes)
        finally:
            archive.close()
    except HistoryError as exc:
        print(f"plantds history: {exc}", file=sys.stderr)
        return 2
    except tango.DevFailed as exc:
        print(f"plantds history: {exc.args[0].desc.strip()}", file=sys.stderr)
        return 1
    if fmt == "PNG":
        write_png(data, Path(target[0]), since, until)
        print(f"{target[0]}: {sum(map(len, data.values()))} values of {len(data)} attributes plotted")
        return 0
    writer = {"table": write_table, "CSV": write_csv, "JSON": write_json}[fmt]
    if target:
        with open(target[0], "w", newline="") as out:
            writer(data, out)
    else:
        writer(data, sys.stdout)
    return 0
