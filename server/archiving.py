"""``plantds archive``: HDB++ archiving configured the way HDB++ operators do it.

The plan file (db/archiving.json) lists attributes by archiver in HDB++'s AttributeList syntax
(``tango://host:port/dev/attr;strategy=ALWAYS;ttl=0``). ``apply`` registers each one through the
configuration manager (hdbpp-cm): that inserts the attribute in the archive DB (``att_conf``; an
event subscriber stores nothing it has not registered) and makes the subscriber archive it and
write its own ``AttributeList``, from which it resumes at every start. ``status`` asks the
manager for each attribute's state as its subscriber reports it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import tango

from . import config

DEFAULT_STRATEGY = "ALWAYS"
# hdbpp-cm runs these against the subscriber; the archive database may be slower than
# PyTango's 3 s default when it is busy.
MANAGER_TIMEOUT_MS = 15000


@dataclass(frozen=True)
class ArchiveEntry:
    """One attribute of the plan, with the archiver that stores it."""

    attribute: str  # fully qualified, lower case: tango://host:port/domain/family/member/attr
    archiver: str
    strategy: str = DEFAULT_STRATEGY
    ttl: int = 0  # hours; 0 = kept forever

    @property
    def device(self) -> str:
        return self.attribute.split("/", 3)[3].rpartition("/")[0]

    @property
    def name(self) -> str:
        return self.attribute.rpartition("/")[2]

    @property
    def short(self) -> str:
        """domain/family/member/attr, as operators type it."""
        return self.attribute.split("/", 3)[3]


@dataclass(frozen=True)
class ArchivePlan:
    manager: str | None
    entries: list[ArchiveEntry]


def parse_entry(text: str, archiver: str) -> ArchiveEntry:
    """``tango://host:port/d/f/m/attr;strategy=X;ttl=N`` (options optional) → ArchiveEntry."""
    name, *options = text.split(";")
    if not re.fullmatch(r"tango://[^/]+:\d+/[^/]+/[^/]+/[^/]+/[^/]+", name):
        raise ValueError(f"{text!r} is not tango://host:port/domain/family/member/attribute")
    fields = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in ("strategy", "ttl"):
            raise ValueError(f"{text!r}: unknown option {option!r} (strategy=…, ttl=hours)")
        fields[key] = value
    return ArchiveEntry(name.lower(), archiver, fields.get("strategy", DEFAULT_STRATEGY),
                        int(fields.get("ttl", 0)))


def read_plan(path: Path | str, tango_host: str, archiver: str | None = None) -> ArchivePlan:
    """The plan in ``path`` with ``${TANGO_HOST}`` filled in; ``archiver`` overrides the file's."""
    text = Path(path).read_text().replace(config.TANGO_HOST_PLACEHOLDER, tango_host)
    try:
        data = json.loads(text)
        entries = [
            parse_entry(item, archiver or listed)
            for listed, items in data["archivers"].items()
            for item in items
        ]
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return ArchivePlan(data.get("manager"), entries)


class Manager:
    """An HDB++ configuration manager (HdbConfigurationManager device)."""

    def __init__(self, name: str):
        self.name = name
        self.proxy = tango.DeviceProxy(name)
        self.proxy.set_timeout_millis(MANAGER_TIMEOUT_MS)

    def archiver_of(self, attribute: str) -> str:
        """The subscriber archiving ``attribute``, "" when none of the manager's does."""
        return self.proxy.AttributeGetArchiver(attribute)

    def add(self, entry: ArchiveEntry) -> None:
        p = self.proxy
        p.SetAttributeName = entry.attribute
        p.SetArchiver = entry.archiver
        p.SetStrategy = entry.strategy
        # The devices push their own archive events with the thresholds the site's Tango DB
        # holds: the manager must neither poll the attribute nor rewrite its event config.
        p.SetCodePushedEvent = True
        p.SetPollingPeriod = 0
        p.SetAbsoluteEvent = 0
        p.SetRelativeEvent = 0
        p.SetPeriodEvent = 0
        p.AttributeAdd()
        if entry.ttl:
            # hdbpp-cm's own TTL hand-over to the subscriber is broken (it sends an empty value)
            p.SetAttributeTTL([entry.attribute, str(entry.ttl)])

    def status(self, attribute: str) -> dict[str, str]:
        """The subscriber's AttributeStatus report, as {"Archiving": "Started", …}."""
        text = self.proxy.AttributeStatus(attribute)
        return {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in text.splitlines())}

    def apply(self, entry: ArchiveEntry) -> list[str]:
        """Bring one attribute to the plan; returns what was changed (empty: nothing)."""
        current = self.archiver_of(entry.attribute)
        if not current:
            self.add(entry)
            return [f"added to {entry.archiver} ({entry.strategy})"]
        changes = []
        if device_name(current) != device_name(entry.archiver):
            self.proxy.AttributeAssign([entry.attribute, entry.archiver])
            changes.append(f"moved from {current} to {entry.archiver}")
        if self.proxy.GetAttributeStrategy(entry.attribute).upper() != entry.strategy.upper():
            self.proxy.SetAttributeStrategy([entry.attribute, entry.strategy])
            changes.append(f"strategy {entry.strategy}")
        if self.proxy.GetAttributeTTL(entry.attribute) != entry.ttl:
            self.proxy.SetAttributeTTL([entry.attribute, str(entry.ttl)])
            changes.append(f"ttl {entry.ttl} h")
        if self.status(entry.attribute).get("Archiving") != "Started":
            self.proxy.AttributeStart(entry.attribute)
            changes.append("started")
        return changes


def device_name(name: str) -> str:
    """domain/family/member of a device name, with or without tango://host:port/, lower case
    (hdbpp-cm answers with the full form)."""
    return re.sub(r"^tango://[^/]+/", "", name).lower()


def tango_error(exc: tango.DevFailed) -> str:
    return exc.args[0].desc.strip().splitlines()[0] if exc.args else str(exc)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    for action, text in (
        ("apply", "register every attribute of FILE with the HDB++ configuration manager and start archiving"),
        ("status", "per attribute of FILE: archived or not, records stored, last stored time, last error"),
    ):
        p = sub.add_parser(action, help=text)
        p.add_argument("file", type=Path, nargs="?", default=config.bundled("archiving.json"),
                       help="the archiving plan (default: the bundled db/archiving.json)")
        p.add_argument("--manager", help="the HdbConfigurationManager device (default: the file's `manager`)")
        p.add_argument("--archiver", help="the HdbEventSubscriber for every entry (default: as the file lists them)")


def run(args: argparse.Namespace) -> int:
    tango_host = os.environ.get("TANGO_HOST")
    if not tango_host:
        print("plantds archive: set TANGO_HOST to the site's database (host:port)", file=sys.stderr)
        return 2
    try:
        plan = read_plan(args.file, tango_host, args.archiver)
        manager_name = args.manager or plan.manager
        if not manager_name:
            raise ValueError(f"{args.file} names no manager: pass --manager DEVICE")
        manager = Manager(manager_name)
        manager.proxy.ping()
    except (OSError, ValueError) as exc:
        print(f"plantds archive: {exc}", file=sys.stderr)
        return 2
    except tango.DevFailed as exc:
        print(f"plantds archive: configuration manager {manager_name}: {tango_error(exc)}", file=sys.stderr)
        return 1
    return (apply if args.action == "apply" else status)(manager, plan)


def apply(manager: Manager, plan: ArchivePlan) -> int:
    changed = failed = 0
    for entry in plan.entries:
        try:
            changes = manager.apply(entry)
        except tango.DevFailed as exc:
            print(f"{entry.short}: FAILED: {tango_error(exc)}")
            failed += 1
            continue
        if changes:
            changed += 1
            print(f"{entry.short}: {', '.join(changes)}")
    total = len(plan.entries)
    if failed:
        print(f"{failed} of {total} attributes failed, {changed} changed")
        return 1
    print(f"{changed} of {total} attributes changed" if changed else f"nothing to change: all {total} attributes archived as planned")
    return 0


def status(manager: Manager, plan: ArchivePlan) -> int:
    rows = [("attribute", "archived", "records", "last stored", "last error")]
    not_archived = 0
    for entry in plan.entries:
        try:
            report = manager.status(entry.attribute)
        except tango.DevFailed as exc:
            rows.append((entry.short, "no", "-", "-", tango_error(exc)))
            not_archived += 1
            continue
        archiving = report.get("Archiving", "?")
        # "Event OK counter : 12 - 2026-12-05 09:00:01.123": events stored since the subscriber started
        count, _, last = report.get("Event OK counter", "0").partition(" - ")
        event_status = report.get("Event status", "")
        db_errors = report.get("DB ERRORS counter", "0").partition(" - ")
        if event_status not in ("Ok", "Event received"):
            error = event_status
        elif db_errors[0].strip() not in ("", "0"):
            error = f"{db_errors[0].strip()} DB errors, last {db_errors[2].strip()}"
        else:
            error = ""
        # hdbpp-es prints microseconds without their dot: "2026-12-05 08:29:32164244"
        last = re.sub(r"(\d\d:\d\d:\d\d)(\d{3})\d*$", r"\1.\2", last.strip()) if count.strip() != "0" else "-"
        rows.append((entry.short, "yes" if archiving == "Started" else archiving.lower(),
                     count.strip(), last, error or "-"))
        not_archived += archiving != "Started"
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[4])
    print(f"{len(plan.entries) - not_archived} of {len(plan.entries)} attributes archived by "
          f"{', '.join(sorted({e.archiver for e in plan.entries}))} (records: events stored since the subscriber started)")
    return 1 if not_archived else 0
