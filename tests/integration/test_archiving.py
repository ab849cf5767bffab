"""Archiving as HDB++ sees it: every attribute in the event subscriber's AttributeList delivers
archive events to a plain PyTango subscriber (what hdbpp-es is), from the shipped configuration,
and periodic archive events keep coming while the values stay the same."""

from __future__ import annotations

import time

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
        wait_for(lambda: log.since(), timeout=10, what=f"an archive event of {entry}")
        first = log.since()[0]
        assert not first.err, f"{entry}: {first.errors}"
        assert first.attr_value.quality != tango.AttrQuality.ATTR_INVALID, f"{entry}: invalid value"
        assert first.attr_value.value is not None, f"{entry}: no value"


def test_periodic_archive_events_while_values_are_steady(shipped_config, subscribe):
    """archive_period, edited in the DB, paces archive events of values that do not change."""
    plant = shipped_config
    archived = plant.archived()
    db = tango.Database()
    for entry in archived:
        db.put_device_attribute_property(entry.device, {entry.attribute: {"archive_period": [str(PERIODIC_MS)]}})
    for device in {entry.device for entry in archived}:
        plant.restart_device(device)
    logs = {
        entry: subscribe(plant.proxy(entry.device), entry.attribute, tango.EventType.ARCHIVE_EVENT)
        for entry in archived
    }
    # Events pushed by the server after the subscription's own first reading.
    mark = time.monotonic() + 0.1
    for entry, log in logs.items():
        wait_for(lambda: len(log.values_since(mark)) >= 2, timeout=5 * PERIODIC_MS / 1000,
                 what=f"two periodic archive events of {entry}")

    # The idle compressor's coolant inlet temperature is constant, so these events are the
    # periodic ones, not change-driven.
    coolant = next(log for entry, log in logs.items() if entry.attribute.lower() == "coolantintemperature")
    values = coolant.values_since(mark)
    assert len(set(values)) == 1, values
