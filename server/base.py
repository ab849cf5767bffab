"""The base Tango device every instrument class derives from.

It owns the common device properties, the I/O worker, the diagnostic attributes and the
mapping of communication state + instrument state to Tango State/Status. Subclasses stay thin:
they build a driver, declare their attributes (read from the snapshot with
:meth:`PlantDevice.read_from_snapshot`), map the instrument's own status with
:meth:`PlantDevice.instrument_state`, and turn commands into queued jobs with
:meth:`PlantDevice.run_on_instrument`.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable

import tango
from tango import AttrQuality, AttrWriteType, DevState, GreenMode
from tango.server import Device, attribute, device_property

from .errors import CommandRefused, CommError, NotVerified
from .worker import Comm, IOWorker

# Reasons of the DevFailed errors we raise: stable strings a sequence can test for.
REASON_READ_ONLY = "PlantDS_ReadOnly"
REASON_OUT_OF_RANGE = "PlantDS_OutOfRange"
REASON_NOT_REACHABLE = "PlantDS_NotReachable"
REASON_REFUSED = "PlantDS_CommandRefused"
REASON_NOT_VERIFIED = "PlantDS_NotVerified"
REASON_FAILED = "PlantDS_InstrumentError"

# Attribute configuration a site edits in the DB (Jive, dsconfig) and Init applies again.
CONFIG_KEYS = (
    "label", "description", "unit", "format", "min_value", "max_value",
    "min_alarm", "max_alarm", "min_warning", "max_warning", "delta_t", "delta_val",
    "abs_change", "rel_change", "archive_abs_change", "archive_rel_change", "archive_period",
    "event_period",
)
# Keys whose absence means "no limit / no threshold": removing them from the DB clears them.
RESETTABLE_KEYS = frozenset(CONFIG_KEYS) - {"label", "description", "unit", "format", "event_period"}
NOT_SPECIFIED = "Not specified"
CONFIG_ALIASES = {"doc": "description"}

# Placeholder written with ATTR_INVALID quality; clients never see it (Tango drops the value).
_INVALID_PLACEHOLDER = {
    tango.CmdArgType.DevDouble: 0.0,
    tango.CmdArgType.DevFloat: 0.0,
    tango.CmdArgType.DevLong: 0,
    tango.CmdArgType.DevLong64: 0,
    tango.CmdArgType.DevShort: 0,
    tango.CmdArgType.DevULong: 0,
    tango.CmdArgType.DevUShort: 0,
    tango.CmdArgType.DevBoolean: False,
    tango.CmdArgType.DevString: "",
    tango.CmdArgType.DevEnum: 0,
}


def fail(reason: str, message: str, origin: str = "PlantDS") -> None:
    """Raise a DevFailed whose description is the operator-readable ``message``."""
    tango.Except.throw_exception(reason, message, origin)


def check_number(name: str, value: float, low: float | None = None, high: float | None = None) -> float:
    """Refuse NaN/inf and values outside [low, high] with a message naming the limit."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        fail(REASON_OUT_OF_RANGE, f"{name}: {value!r} is not a number")
    if not math.isfinite(value):
        fail(REASON_OUT_OF_RANGE, f"{name}: {value} is not a finite number; nothing was sent")
    if low is not None and value < low:
        fail(REASON_OUT_OF_RANGE, f"{name}: {value:g} is below the minimum {low:g}; nothing was sent")
    if high is not None and value > high:
        fail(REASON_OUT_OF_RANGE, f"{name}: {value:g} is above the maximum {high:g}; nothing was sent")
    return value


class PlantDevice(Device):
    """Common properties, I/O worker, diagnostics and State/Status for one instrument."""

    green_mode = GreenMode.Synchronous

    Url = device_property(dtype=str, mandatory=True, doc="Transport URL of the instrument")
    RefreshPeriod = device_property(dtype=int, default_value=1000, doc="Refresh cycle period [ms]")
    Timeout = device_property(dtype=float, default_value=1.0, doc="Reply timeout per request [s]")
    Retries = device_property(dtype=int, default_value=2, doc="Resends after a timeout")
    ReadOnly = device_property(
        dtype=bool, default_value=False, doc="Refuse every write and command that changes the instrument"
    )

    # ---- hooks for subclasses ----------------------------------------------------------------
    def create_driver(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def instrument_state(self, values: dict[str, Any]) -> tuple[DevState, str]:  # pragma: no cover
        """Map one snapshot to (State, Status text) while communication is good."""
        raise NotImplementedError

    def create_attributes(self) -> None:
        """Add this device's attributes with :meth:`add_snapshot_attribute` (from its tables)."""

    # ---- life cycle --------------------------------------------------------------------------
    def init_device(self) -> None:
        super().init_device()
        self.worker: IOWorker | None = None
        self._db_attr_props: dict[str, dict[str, list[str]]] = {}  # re-read on every Init
        reinit = hasattr(self, "_attr_table_defaults")
        if not reinit:
            self._attr_table_defaults: dict[str, dict[str, str]] = {}
            self._attr_device_defaults: dict[str, dict[str, str]] = {}
            self._attr_units: dict[str, str] = {}
        self.set_state(DevState.INIT)
        self.set_status("Connecting to the instrument")
        try:
            driver = self.create_driver()
        except (ValueError, KeyError) as exc:
            # A configuration error: say which property to fix; stay alive so Init can retry.
            self.set_state(DevState.FAULT)
            self.set_status(f"Configuration error: {exc}. Fix the device properties and run Init.")
            self.error_stream(f"configuration error: {exc}")
            return
        if reinit:
            # Tango keeps dynamic attributes across Init; re-run the table so the attribute set,
            # units and limits follow the new properties and the DB's current configuration.
            self.initialize_dynamic_attributes()
        self.worker = IOWorker(self.get_name(), driver, self.RefreshPeriod / 1000.0)
        self.worker.start()

    def delete_device(self) -> None:
        if getattr(self, "worker", None) is not None:
            self.worker.stop()
            self.worker = None
        super().delete_device()

    # ---- State / Status ----------------------------------------------------------------------
    def _current_state(self) -> tuple[DevState, str]:
        worker = self.worker
        if worker is None:
            return self.get_state(), self.get_status()
        if worker.comm is Comm.CONNECTING:
            return DevState.INIT, f"Connecting to {self.Url}"
        if worker.comm is Comm.LOST:
            return DevState.UNKNOWN, (
                f"Instrument not reachable at {self.Url}: {worker.reason}. "
                "Retrying automatically; check power, cable and network."
            )
        if worker.snapshot.time == 0.0:
            return DevState.INIT, "Connected; waiting for the first refresh"
        if worker.is_stale():
            age = time.time() - worker.snapshot.time
            return DevState.UNKNOWN, f"No fresh data from the instrument for {age:.1f} s"
        return self.instrument_state(dict(worker.snapshot.values))

    def dev_state(self) -> DevState:
        state, status = self._current_state()
        self.set_state(state)
        self.set_status(status)
        # The default implementation turns ON into ALARM when an attribute is out of limits.
        return super().dev_state()

    def dev_status(self) -> str:
        self.dev_state()
        return super().dev_status()

    # ---- reading from the snapshot -----------------------------------------------------------
    def snapshot_value(self, key: str) -> tuple[Any, float, bool]:
        """(value, acquisition time, valid) of ``key`` in the current snapshot."""
        worker = self.worker
        if worker is None:
            return None, time.time(), False
        snap = worker.snapshot
        value = snap.values.get(key)
        valid = worker.comm is Comm.CONNECTED and not worker.is_stale() and value is not None
        return value, snap.time or time.time(), valid

    def read_from_snapshot(self, attr: tango.Attribute):
        """Generic read method: the attribute's name is its key in the snapshot."""
        value, stamp, valid = self.snapshot_value(attr.get_name())
        if valid:
            return value, stamp, AttrQuality.ATTR_VALID
        # Stamped now, not with the last good snapshot's time: an archiver keys rows on the
        # timestamp (HDB++ refuses a second row at the same time), so the outage must be new.
        return self.invalid_placeholder(attr), time.time(), AttrQuality.ATTR_INVALID

    def initialize_dynamic_attributes(self) -> None:
        """Offer exactly the attributes the device's tables give now (called at creation and on
        every Init): a changed Family or Commands property, or a device re-created by DevRestart
        (which starts from every attribute the class has seen), must not keep others' attributes.
        """
        present = {attr.get_name() for attr in self.get_device_attr().get_attribute_list()}
        self._wanted_attributes: set[str] = set()
        self.create_attributes()
        for name in present - self._wanted_attributes - self._static_attribute_names():
            self.remove_snapshot_attribute(name)
        for name in self._wanted_attributes:
            # A new attribute got the table's and the DB's values from Tango; it needs only the
            # per-device defaults. One that already existed (Init) gets everything again.
            if name in present or name in self._attr_device_defaults or name in self._attr_units:
                self._apply_attribute_config(name)
        self._poll_as_configured(self._wanted_attributes - present)

    def _static_attribute_names(self) -> set[str]:
        names = {"State", "Status"}
        for cls in type(self).__mro__:
            names.update(n for n, v in vars(cls).items() if isinstance(v, attribute))
        return names

    def remove_snapshot_attribute(self, name: str) -> None:
        # clean_db=False: the attribute's configuration in the DB belongs to the site.
        self.remove_attribute(name, False, False)
        for table in (self._attr_table_defaults, self._attr_device_defaults, self._attr_units):
            table.pop(name, None)

    def _poll_as_configured(self, added: set[str]) -> None:
        """Tango starts the polling listed in the DB's polled_attr at server start only; an
        attribute a later Init adds gets its configured polling here."""
        util = tango.Util.instance()
        if not added or not tango.Util._UseDb or util.is_svr_starting():
            return
        polled = list(util.get_database().get_device_property(self.get_name(), "polled_attr")["polled_attr"])
        periods = {name.lower(): int(period) for name, period in zip(polled[::2], polled[1::2])}
        for name in added:
            if name.lower() in periods and not self.is_attribute_polled(name):
                try:
                    self.poll_attribute(name, periods[name.lower()])
                except tango.DevFailed as exc:  # the attribute still reads; say why it is not polled
                    self.error_stream(f"attribute {name}: polling not started: {exc.args[0].desc}")

    def add_snapshot_attribute(self, name: str, fset: Callable | None = None, **props) -> None:
        """Add a dynamic attribute read from the snapshot under ``name``.

        Dynamic, because the read method then receives the attribute (one generic reader for all)
        and because units, families and command tables decide at Init which attributes exist.
        ``fset(attr)`` makes it read/write. On a later Init this is a no-op for the attribute
        itself (Tango keeps it) but its configuration is applied again.
        """
        access = AttrWriteType.READ_WRITE if fset else AttrWriteType.READ
        self.add_attribute(
            attribute(name=name, fget=self.read_from_snapshot, fset=fset, access=access, **props)
        )
        table = {CONFIG_ALIASES.get(k, k): str(v) for k, v in props.items() if CONFIG_ALIASES.get(k, k) in CONFIG_KEYS}
        # Tango itself applied the table's values and the DB's at creation.
        self._attr_table_defaults[name] = table
        self._wanted_attributes.add(name)

    def set_device_defaults(self, name: str, unit: str | None = None, **defaults: str) -> None:
        """Per-device attribute defaults that depend on device properties (units, converted limits).

        Dynamic attributes of one name share their class-level defaults across devices, so these
        are applied per device, once :meth:`create_attributes` has run: ``unit`` always (it must
        match the conversion the device does), the others where the DB does not set them.
        """
        self._attr_device_defaults[name] = {k: str(v) for k, v in defaults.items()}
        if unit is not None:
            self._attr_units[name] = unit

    def _apply_attribute_config(self, name: str) -> None:
        """Configuration of one attribute: forced unit > DB > device default > table > unset.

        Run at creation and again on every Init, so an edit made in the DB (Jive, dsconfig) or a
        changed unit property takes effect on Init without a server restart; a property removed
        from the DB falls back to the default.
        """
        attr = self.get_device_attr().get_attr_by_name(name)
        if attr.get_data_type() == tango.CmdArgType.DevEnum:
            return  # MultiAttrProp cannot carry enum_labels; an enum has no limits to follow
        configured = self._db_attribute_properties(name)
        props = attr.get_properties()
        for key in CONFIG_KEYS:
            if key in configured:
                value = ",".join(configured[key])
            elif key in self._attr_device_defaults.get(name, {}):
                value = self._attr_device_defaults[name][key]
            elif key in self._attr_table_defaults.get(name, {}):
                value = self._attr_table_defaults[name][key]
            elif key in RESETTABLE_KEYS:
                value = NOT_SPECIFIED
            else:
                continue
            setattr(props, key, value)
        if name in self._attr_units:
            props.unit = self._attr_units[name]
        try:
            attr.set_properties(props)
        except tango.DevFailed as exc:
            # e.g. a DB max_alarm below the default min_alarm: keep the device running and say so.
            self.error_stream(f"attribute {name}: configuration not applied: {exc.args[0].desc}")
        self._restore_db_entries(name, configured)

    def _restore_db_entries(self, name: str, configured: dict) -> None:
        """Undo the DB writes ``set_properties`` makes, so the DB keeps only what the site set.

        cppTango stores every property it is given; our defaults are not site configuration and
        must not become it (a later unit change would otherwise inherit stale limits).
        """
        if not tango.Util._UseDb:
            return
        db = tango.Util.instance().get_database()
        db.delete_device_attribute_property(
            self.get_name(), {name: [k for k in CONFIG_KEYS if k not in configured]}
        )
        if "unit" in configured and name in self._attr_units:
            db.put_device_attribute_property(self.get_name(), {name: {"unit": configured["unit"]}})

    def _db_attribute_properties(self, name: str) -> dict[str, list[str]]:
        """The attribute's properties in the Tango DB, read once per Init and attribute.

        Per name, because attributes are created one by one: a device-wide read made while the
        first is being created would miss all the others.
        """
        if name not in self._db_attr_props:
            self._db_attr_props[name] = {}
            if tango.Util._UseDb:
                db = tango.Util.instance().get_database()
                self._db_attr_props[name] = dict(
                    db.get_device_attribute_property(self.get_name(), [name]).get(name, {})
                )
        return self._db_attr_props[name]

    def configured_range(self, name: str, low: float, high: float) -> tuple[float, float]:
        """[low, high] narrowed by the attribute's min_value/max_value where the DB sets them:
        a site may tighten a device's write range, never widen it."""
        props = self.get_device_attr().get_attr_by_name(name).get_properties()
        return max(low, _number(props.min_value, low)), min(high, _number(props.max_value, high))

    @staticmethod
    def invalid_placeholder(attr: tango.Attribute) -> Any:
        if attr.get_data_format() != tango.AttrDataFormat.SCALAR:
            return [""] if attr.get_data_type() == tango.CmdArgType.DevString else []
        return _INVALID_PLACEHOLDER.get(attr.get_data_type(), 0)

    # ---- writes and commands -----------------------------------------------------------------
    def check_writable(self, what: str) -> None:
        if self.ReadOnly:
            fail(
                REASON_READ_ONLY,
                f"{what} refused: this device is configured ReadOnly (device property ReadOnly=true). "
                "Nothing was sent to the instrument.",
            )

    def run_on_instrument(
        self, what: str, job: Callable[[Any], Any], timeout: float | None = None, changes_instrument: bool = True
    ) -> Any:
        """Run ``job(driver)`` on the I/O worker, between refresh cycles, and wait for it.

        Every instrument error becomes a DevFailed with a message the operator can act on. A job
        that only reads (``changes_instrument=False``) is allowed on a ReadOnly device.
        """
        if changes_instrument:
            self.check_writable(what)
        if self.worker is None:
            fail(REASON_NOT_REACHABLE, f"{what} refused: the device is not configured ({self.get_status()})")
        future = self.worker.submit(job)
        if timeout is None:
            timeout = self.Timeout * (self.Retries + 1) * 3 + self.RefreshPeriod / 1000.0
        try:
            result = future.result(timeout)
        except FutureTimeout:
            # Withdraw it if it has not started, so nothing reaches the wire after the client
            # was told it failed.
            withdrawn = future.cancel()
            fail(REASON_NOT_REACHABLE, f"{what}: no answer from the instrument within {timeout:.1f} s"
                 + ("; it was withdrawn and not sent" if withdrawn else "; it may still complete"))
        except CommError as exc:
            fail(REASON_NOT_REACHABLE, f"{what} failed: {exc}")
        except ValueError as exc:
            fail(REASON_OUT_OF_RANGE, f"{what} refused: {exc}")
        except CommandRefused as exc:
            fail(REASON_REFUSED, f"{what} refused: {exc}")
        except NotVerified as exc:
            fail(REASON_NOT_VERIFIED, f"{what} not confirmed by the instrument: {exc}")
        except tango.DevFailed:
            raise
        except Exception as exc:
            fail(REASON_FAILED, f"{what} failed: {exc}")
        return result

    # ---- diagnostics -------------------------------------------------------------------------
    @attribute(
        dtype=int,
        label="Communication errors",
        doc="Failed refresh cycles and connection attempts since the device started",
    )
    def CommunicationErrors(self) -> int:
        return self.worker.errors if self.worker else 0

    @attribute(
        dtype=float,
        label="Last update",
        unit="s",
        format="%.3f",
        doc="Time of the last good refresh, in seconds since 1970-01-01 UTC (0 = never)",
    )
    def LastUpdate(self) -> float:
        return self.worker.last_update if self.worker else 0.0

    @attribute(
        dtype=float,
        label="Round-trip time",
        unit="ms",
        format="%.1f",
        doc="Duration of the last refresh cycle on the wire",
    )
    def RoundTripTime(self):
        rtt = self.worker.round_trip_ms if self.worker else float("nan")
        if math.isnan(rtt):
            return 0.0, time.time(), AttrQuality.ATTR_INVALID
        return rtt


def _number(text: str, default: float) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):  # "Not specified"
        return default
