"""Real archiving: the HDB++ event subscriber (hdb++es-srv, built by deploy/hdbpp.sh) stores the
demo plant's attributes in PostgreSQL, configured with ``plantds archive apply`` through the
configuration manager, and ``plantds history`` reads them back with their quality."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import tango

from plantds.devices.cryomech import protocol
from plantds.server import archiving, config, history
from plantds.server.hdbpp import hdbpp_sh, running_archiver
from plantds.server.testing import wait_for

pytestmark = pytest.mark.integration

PLAN = config.bundled("archiving.json")
HELIUM_HIGH = 1 << protocol.ALARM_BITS.index("Helium temperature high")
OIL_HIGH = 1 << protocol.WARNING_BITS.index("Oil temperature high")


class Archiver:
    """The running HDB++ of the session: its devices, its database, and the operator's tools."""

    def __init__(self, state: Path, tango_host: str, info: dict[str, str]):
        self.state, self.tango_host = state, tango_host
        self.subscriber = tango.DeviceProxy(info["HDBPP_ES_DEVICE"])
        self.manager = info["HDBPP_CM_DEVICE"]
        self.db = history.db_from_url(info["HDBPP_DB"])
        self.plan = archiving.read_plan(PLAN, tango_host)

    def plantds(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "plantds.server.cli", *args],
                              env={**os.environ, "TANGO_HOST": self.tango_host},
                              capture_output=True, text=True, timeout=120)

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        db = self.db
        with contextlib.closing(psycopg2.connect(host=db["host"], port=db["port"], dbname=db["database"],
                                                 user=db["user"], password=db["password"])) as conn:
            with conn.cursor() as cursor:
                cursor.execute(query, params)
                return cursor.fetchall()

    def rows(self, attribute: str, since: dt.datetime | None = None) -> list[tuple]:
        """(data_time, value_r, quality, error) of a fully qualified attribute, oldest first;
        with ``since``, only rows acquired (data_time) after it."""
        [(table, conf_id)] = self.sql("SELECT table_name, att_conf_id FROM att_conf WHERE att_name = %s",
                                      (attribute,))
        since = since or dt.datetime.fromtimestamp(0, dt.timezone.utc)
        return self.sql(
            f"SELECT d.data_time, d.value_r, d.quality, e.error_desc FROM {table} d "
            "LEFT JOIN att_error_desc e USING (att_error_desc_id) "
            "WHERE d.att_conf_id = %s AND d.data_time > %s ORDER BY d.data_time", (conf_id, since))

    def full_name(self, short: str) -> str:
        return f"tango://{self.tango_host}/{short}".lower()


@pytest.fixture(scope="module")
def archiver(demo_plant, tmp_path_factory) -> Iterator[Archiver]:
    """HDB++ running in the session's Tango DB with db/archiving.json applied once."""
    state = tmp_path_factory.mktemp("hdbpp")
    with running_archiver(state, demo_plant.tango_host, quiet=True, purge=True) as info:
        arch = Archiver(state, demo_plant.tango_host, info)
        applied = arch.plantds("archive", "apply", "--manager", arch.manager)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        yield arch


def archive_period_s(plant, entry) -> float:
    """The attribute's archive_period (the DB's, as the device serves it), in seconds."""
    period = plant.proxy(entry.device).get_attribute_config(entry.name).events.arch_event.archive_period
    return int(period) / 1000 if period.isdigit() else 60.0


def test_every_planned_attribute_gets_rows(archiver, demo_plant):
    """Within a few archive periods (the subscription's first event is stored at once)."""
    for entry in archiver.plan.entries:
        wait_for(lambda: archiver.rows(entry.attribute), timeout=3 * archive_period_s(demo_plant, entry),
                 what=f"rows of {entry.short}")
    # the subscriber refreshes its list attributes every PollingThreadPeriod
    planned = {e.attribute for e in archiver.plan.entries}
    wait_for(lambda: {a.lower() for a in archiver.subscriber.AttributeList or []} == planned, timeout=30,
             what="the subscriber listing exactly the planned attributes")


def test_apply_twice_changes_nothing(archiver):
    conf_before = archiver.sql("SELECT att_conf_id, att_name FROM att_conf ORDER BY 1")
    list_before = tango.Database().get_device_property(archiver.subscriber.name(), "AttributeList")["AttributeList"]
    again = archiver.plantds("archive", "apply", "--manager", archiver.manager)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.strip() == f"nothing to change: all {len(archiver.plan.entries)} attributes archived as planned"
    assert archiver.sql("SELECT att_conf_id, att_name FROM att_conf ORDER BY 1") == conf_before
    after = tango.Database().get_device_property(archiver.subscriber.name(), "AttributeList")["AttributeList"]
    assert list(after) == list(list_before)


def test_status_lists_every_attribute_archived(archiver):
    status = archiver.plantds("archive", "status", "--manager", archiver.manager)
    assert status.returncode == 0, status.stdout + status.stderr
    lines = {ln.split()[0]: ln.split() for ln in status.stdout.splitlines()[1:-1]}
    for entry in archiver.plan.entries:
        assert lines[entry.short][1] == "yes", status.stdout
        assert int(lines[entry.short][2]) >= 1, status.stdout


def test_stored_values_are_what_the_device_served(archiver, demo_plant, subscribe):
    """A client subscribed to the same archive events sees every stored row: same value, same
    timestamp (the device's acquisition time travels with the event into data_time)."""
    heat_pump = "plant/heatpump/1"
    names = ["t_hs", "t_ext"]  # the simulated heat pump's temperatures drift, so they keep changing
    logs = {n: subscribe(demo_plant.proxy(heat_pump), n, tango.EventType.ARCHIVE_EVENT) for n in names}
    mark = dt.datetime.now(dt.timezone.utc)
    for name in names:
        full = archiver.full_name(f"{heat_pump}/{name}")
        wait_for(lambda: len(archiver.rows(full, since=mark)) >= 2, timeout=90, what=f"two new rows of {name}")
        served = {round(e.attr_value.time.totime(), 6): e.attr_value.value
                  for e in logs[name].since() if not e.err}
        for data_time, value, quality, _ in archiver.rows(full, since=mark):
            key = round(data_time.timestamp(), 6)
            assert key in served, f"{name}: stored {value} at {data_time} was never served as an event"
            assert value == pytest.approx(served[key], abs=1e-9)
            assert quality == int(tango.AttrQuality.ATTR_VALID)


def cpa_history(archiver, *args: str) -> dict:
    out = archiver.plantds("history", *args, "-o", "JSON")
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def test_alarm_and_warning_values_are_stored_and_returned(archiver, compressor):
    cpa, sim = compressor
    mark = dt.datetime.now(dt.timezone.utc)
    sim.set_warnings(OIL_HIGH)
    warning = archiver.full_name("plant/compressor/1/warningcode")
    wait_for(lambda: any(q == int(tango.AttrQuality.ATTR_WARNING) for _, _, q, _ in archiver.rows(warning, mark)),
             timeout=30, what="a WARNING row of WarningCode")
    sim.set_warnings(0)
    sim.set_alarms(HELIUM_HIGH)
    alarm = archiver.full_name("plant/compressor/1/alarmcode")
    wait_for(lambda: any(q == int(tango.AttrQuality.ATTR_ALARM) for _, _, q, _ in archiver.rows(alarm, mark)),
             timeout=30, what="an ALARM row of AlarmCode")

    since = (mark - dt.timedelta(seconds=1)).isoformat()
    read = cpa_history(archiver, "plant/compressor/1/AlarmCode", "plant/compressor/1/WarningCode", "--since", since)
    alarms = [r for r in read[alarm] if r["quality"] == "ALARM"]
    warnings = [r for r in read[warning] if r["quality"] == "WARNING"]
    assert alarms and all(r["value"] == HELIUM_HIGH for r in alarms), read[alarm]
    assert warnings and all(r["value"] == OIL_HIGH for r in warnings), read[warning]


def test_link_outage_is_stored_as_invalid_rows(archiver, compressor):
    """The link to the compressor drops: its archived attributes turn INVALID (Tango sends an
    archive event on the quality change) and HDB++ stores that, without a value."""
    cpa, sim = compressor
    mark = dt.datetime.now(dt.timezone.utc)
    sim.set_online(False)
    try:
        wait_for(lambda: cpa.state() == tango.DevState.UNKNOWN, timeout=30, what="the compressor unreachable")
        attribute = archiver.full_name("plant/compressor/1/coolantintemperature")
        wait_for(lambda: any(q == int(tango.AttrQuality.ATTR_INVALID) for _, _, q, _ in archiver.rows(attribute, mark)),
                 timeout=30, what="an INVALID row of CoolantInTemperature")
    finally:
        sim.set_online(True)
    wait_for(lambda: archiver.rows(attribute, mark)[-1][2] == int(tango.AttrQuality.ATTR_VALID), timeout=60,
             what="a VALID row again after the link is back")
    read = cpa_history(archiver, "plant/compressor/1/CoolantInTemperature", "--since",
                       (mark - dt.timedelta(seconds=1)).isoformat())
    assert [r["value"] for r in read[attribute] if r["quality"] == "INVALID"] == \
        [None] * sum(r["quality"] == "INVALID" for r in read[attribute])
    assert any(r["quality"] == "INVALID" for r in read[attribute])


def test_restarted_subscriber_resumes_from_its_attribute_list(archiver):
    """The subscriber wrote its AttributeList itself when apply added the attributes; started
    again, it archives all of them from that list."""
    listed = tango.Database().get_device_property(archiver.subscriber.name(), "AttributeList")["AttributeList"]
    assert {e.split(";")[0].lower() for e in listed} == {e.attribute for e in archiver.plan.entries}
    hdbpp_sh("restart-subscriber", archiver.state, archiver.tango_host, quiet=True)
    mark = dt.datetime.now(dt.timezone.utc)
    wait_for(lambda: archiver.subscriber.AttributeStartedNumber == len(archiver.plan.entries), timeout=60,
             what="the subscriber archiving every attribute again")
    # New values reach the archive. (A steady value whose timestamp did not move since the
    # last stored row is not stored twice: HDB++ keys rows on the timestamp.)
    for name in ("plant/heatpump/1/t_hs", "plant/heatpump/1/t_ext"):
        wait_for(lambda: archiver.rows(archiver.full_name(name), since=mark), timeout=90,
                 what=f"a row of {name} after the restart")


def test_history_writes_a_png_plot(archiver, tmp_path):
    png = tmp_path / "plant.png"
    done = archiver.plantds("history", "plant/compressor/1/CoolantInTemperature", "plant/heatpump/1/t_hs",
                            "plant/compressor/1/HighPressure", "--since", "10m", "-o", "PNG", str(png))
    assert done.returncode == 0, done.stdout + done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "3 attributes plotted" in done.stdout


def test_history_table_and_csv(archiver, tmp_path):
    table = archiver.plantds("history", "plant/compressor/1/HighPressure", "--since", "1h")
    assert table.returncode == 0, table.stderr
    # exact names: highpressure is not confused with highpressureaverage (a pyhdbpp 2.1.3 quirk)
    assert table.stdout.splitlines()[0].startswith(archiver.full_name("plant/compressor/1/highpressure") + ":")
    out = tmp_path / "h.csv"
    csv_run = archiver.plantds("history", "plant/heatpump/1/t_hs", "--since", "1h", "-o", "CSV", str(out))
    assert csv_run.returncode == 0, csv_run.stderr
    assert out.read_text().splitlines()[0] == "attribute,time,value,quality,error"
    unknown = archiver.plantds("history", "plant/compressor/1/NoSuchThing")
    assert unknown.returncode == 2 and "not in the archive" in unknown.stderr
