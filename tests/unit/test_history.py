"""plantds history's pure parts: times, where the archive is, and the output formats."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from plantds.server import history

NOW = dt.datetime(2026, 1, 2, 12, 0, tzinfo=dt.timezone.utc)
ROWS = {
    "tango://h:1/plant/compressor/1/alarmcode": [
        history.Row(NOW - dt.timedelta(minutes=2), 0, "VALID", ""),
        history.Row(NOW - dt.timedelta(minutes=1), 512, "ALARM", ""),
        history.Row(NOW, None, "INVALID", "link down"),
    ],
}


@pytest.mark.parametrize("text, ago", [("1h", 3600), ("30m", 1800), ("1h30m", 5400), ("2d", 172800), ("now", 0)])
def test_durations_count_back_from_now(text, ago):
    assert history.parse_time(text, NOW) == NOW - dt.timedelta(seconds=ago)


def test_iso_times_keep_their_zone():
    assert history.parse_time("2026-01-02T10:00:00+00:00", NOW) == NOW - dt.timedelta(hours=2)


def test_a_time_that_is_neither_is_refused():
    with pytest.raises(history.HistoryError, match="neither a duration"):
        history.parse_time("yesterday", NOW)


def test_archive_found_from_the_subscribers_libconfiguration():
    lines = ["libname=/x/lib/libhdb++timescale.so.2",
             "connect_string=user=hdb_event_sub password=pw host=127.0.0.1 port=5433 dbname=hdb",
             "logging_level=error"]
    assert history.db_from_libconfiguration(lines) == {
        "host": "127.0.0.1", "port": 5433, "database": "hdb", "user": "hdb_event_sub", "password": "pw"}


def test_mysql_backend_is_named_not_misread():
    with pytest.raises(history.HistoryError, match="libhdb\\+\\+mysql"):
        history.db_from_libconfiguration(["libname=libhdb++mysql.so", "host=db"])


def test_db_url():
    assert history.db_from_url("postgresql://reader:s%40cret@db.example.org:5433/hdb") == {
        "host": "db.example.org", "port": 5433, "database": "hdb", "user": "reader", "password": "s@cret"}
    with pytest.raises(history.HistoryError):
        history.db_from_url("mysql://db/hdb")


def test_csv_and_json_keep_quality_and_errors():
    out = io.StringIO()
    history.write_csv(ROWS, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["value"], r["quality"], r["error"]) for r in rows] == [
        ("0", "VALID", ""), ("512", "ALARM", ""), ("", "INVALID", "link down")]
    out = io.StringIO()
    history.write_json(ROWS, out)
    read = json.loads(out.getvalue())["tango://h:1/plant/compressor/1/alarmcode"]
    assert [(r["value"], r["quality"]) for r in read] == [(0, "VALID"), (512, "ALARM"), (None, "INVALID")]


def test_table_names_the_attribute_and_its_row_count():
    out = io.StringIO()
    history.write_table(ROWS, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "tango://h:1/plant/compressor/1/alarmcode: 3 rows"
    assert lines[2].split()[-1] == "ALARM" and lines[3].endswith("INVALID  link down")
