"""Archiving as HDB++ sees it: every attribute db/archiving.json archives delivers
archive events to a plain PyTango subscriber (what hdbpp-es is), from the shipped configuration,
and periodic archive events keep coming while the values stay the same."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import tango

from plantds.server.testing import wait_for

pytestmark = pytest.mark.integration

PERIODIC_MS = 1000


def test_every_archived_attribute_is_polled_with_archive_criteria(demo_plant):
    for entry in demo_plant.archived():
        proxy = demo_plant.proxy(entry.device)
        assert proxy.is_attribute_polled(entry.attribute), f"{entry}: not polled"
        archive = proxy.get_attribute_config(entry.attribute).events.arch_event
        criteria = (archive.archive_abs_change, archive.archive_rel_change, archive.archive_period)
        assert any(c != "Not specified" for c in criteria), f"{entry}: no archive criteria"


def test_every_archived_attribute_delivers_archive_events(demo_plant, subscribe):
    """The subscription is accepted (the server refuses one without polling or archive criteria)
    and its first event carries a valid value."""
    logs = {
        entry: subscribe(demo_plant.proxy(entry.device), entry.attribute, tango.EventType.ARCHIVE_EVENT)
        for entry in demo_plant.archived()
    }
    for entry, log in logs.items():
        wait_for(lambda: log.since(), what=f"an archive event of {entry}")
        first = log.since()[0]
        assert not first.err, f"{entry}: {first.errors}"
        assert first.attr_value.quality != tango.AttrQuality.ATTR_INVALID, f"{entry}: invalid value"
        assert first.attr_value.value is not None, f"{entry}: no value"


def periodic_archive_events(plant, subscribe, entries, apply) -> dict:
    """Set archive_period of ``entries`` in the DB, ``apply()`` it, and wait for two periodic
    archive events of each; returns the values of the events after the first reading."""
    db = tango.Database()
    for entry in entries:
        db.put_device_attribute_property(entry.device, {entry.attribute: {"archive_period": [str(PERIODIC_MS)]}})
    apply()
    logs = {entry: subscribe(plant.proxy(entry.device), entry.attribute, tango.EventType.ARCHIVE_EVENT)
            for entry in entries}
    # Events pushed by the server after the subscription's own first reading.
    mark = time.monotonic() + 0.1
    for entry, log in logs.items():
        wait_for(lambda: len(log.values_since(mark)) >= 2, timeout=30 * PERIODIC_MS / 1000,
                 what=f"two periodic archive events of {entry}")
    return {entry: log.values_since(mark) for entry, log in logs.items()}


def init_devices_of(plant, entries) -> Callable[[], None]:
    def init() -> None:
        for device in {entry.device for entry in entries}:
            plant.init_device(device)

    return init


# Init applies the DB's attribute configuration to the attributes PlantDS builds from its tables;
# Tango's own State and the enumerated attributes keep theirs until the server restarts
# (server/base.py does not re-apply it to them).
NOT_REAPPLIED_AT_INIT = {"state", "operatingstate"}


def test_periodic_archive_events_while_values_are_steady(shipped_config, subscribe):
    """archive_period, edited in the DB and applied by Init, paces archive events of values that
    do not change."""
    plant = shipped_config
    entries = [e for e in plant.archived() if e.attribute.lower() not in NOT_REAPPLIED_AT_INIT]
    values = periodic_archive_events(plant, subscribe, entries, init_devices_of(plant, entries))

    # The idle compressor's coolant inlet temperature is constant, so these events are the
    # periodic ones, not change-driven.
    coolant = next(v for entry, v in values.items() if entry.attribute.lower() == "coolantintemperature")
    assert len(set(coolant)) == 1, coolant


@pytest.mark.xfail(strict=True, reason="Init does not re-apply attribute configuration to State and enums")
def test_archive_period_of_state_and_enums_applies_at_init(shipped_config, subscribe):
    plant = shipped_config
    entries = [e for e in plant.archived() if e.attribute.lower() in NOT_REAPPLIED_AT_INIT]
    periodic_archive_events(plant, subscribe, entries, init_devices_of(plant, entries))


def test_archive_period_of_state_and_enums_applies_at_server_restart(shipped_config, subscribe):
    plant = shipped_config
    entries = [e for e in plant.archived() if e.attribute.lower() in NOT_REAPPLIED_AT_INIT]
    assert entries, "nothing of this kind is archived: the exception above can go"
    periodic_archive_events(plant, subscribe, entries, plant.restart_server)
