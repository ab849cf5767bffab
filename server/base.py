"""The base Tango device every instrument class derives from.

It owns the common device properties, the I/O worker, the diagnostic attributes and the
mapping of communication state + instrument state to Tango State/Status. Subclasses stay thin:
they build a driver, give their attributes as :class:`~plantds.server.schema.Attr` records from
their tables (:meth:`PlantDevice.attribute_schema`; read from the snapshot, write-checked in one
place), map the instrument's own status with
:meth:`PlantDevice.instrument_state`, and turn commands into queued jobs with
:meth:`PlantDevice.run_on_instrument`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import time
from typing import Any, Callable, Iterable

import tango
from tango import AttrQuality, AttrWriteType, DevState, GreenMode
from tango.server import Device, attribute, device_property

from .errors import CommandRefused, CommError, NotVerified
from .publisher import Publisher
from .schema import Attr
from .worker import Comm, IOWorker, Withdrawn

log = logging.getLogger(__name__)

# Reasons of the DevFailed errors we raise: stable strings a sequence can test for.
REASON_READ_ONLY = "PlantDS_ReadOnly"
REASON_OUT_OF_RANGE = "PlantDS_OutOfRange"
REASON_NOT_REACHABLE = "PlantDS_NotReachable"
REASON_REFUSED = "PlantDS_CommandRefused"
REASON_NOT_VERIFIED = "PlantDS_NotVerified"
REASON_FAILED = "PlantDS_InstrumentError"
REASON_PENDING = "PlantDS_Pending"
REASON_CONFIG = "PlantDS_ConfigurationError"

# No request holds its client longer than this: PyTango's default client timeout is 3 s, and a
# reply must reach the client before it gives up (DESIGN.md, the contract with clients).
CLIENT_DEADLINE_S = 2.5

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
    """Common properties, I/O worker, diagnostics, events and State/Status for one instrument."""

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

    def attribute_schema(self) -> Iterable[Attr]:  # pragma: no cover - abstract
        """This device's attributes, from its tables and its properties (units, family,
        language); run after :meth:`create_driver`."""
        raise NotImplementedError

    def write_value(self, name: str, value: Any) -> Any:  # pragma: no cover - abstract
        """Write a writable attribute's value to the instrument (after :meth:`checked_value`)."""
        raise NotImplementedError

    def create_attributes(self) -> None:
        """Every attribute of :meth:`attribute_schema`, created (server start) or configured
        again (Init)."""
        self._schema = {spec.name: spec for spec in self.attribute_schema()}
        for spec in self._schema.values():
            if spec.defaults or spec.unit_per_device:
                self.set_device_defaults(spec.name, unit=spec.unit if spec.unit_per_device else None, **spec.defaults)
            fset = self._write_from_client if spec.writable else None
            self.add_snapshot_attribute(spec.name, fset=fset, **spec.tango_properties())

    def _write_from_client(self, attr: tango.WAttribute) -> None:
        self.write_value(attr.get_name(), attr.get_write_value())

    def checked_value(self, name: str, value: Any, write_range: tuple[float, float] | None = None) -> float:
        """The one write check of every instrument: a finite number within the attribute's write
        range (``write_range`` for a value that has no attribute here), narrowed by the DB's
        min_value/max_value; otherwise a DevFailed naming the limit, and nothing is sent."""
        spec = self._schema.get(name)
        low, high = write_range or (spec.write_range if spec else None) or (None, None)
        if spec is not None and low is not None:
            low, high = self.configured_range(name, low, high)
        return check_number(name, value, low, high)

    # ---- life cycle --------------------------------------------------------------------------
    def init_device(self) -> None:
        super().init_device()
        self.worker: IOWorker | None = None
        self._publisher: Publisher | None = None
        self._config_error = ""
        self._db_attr_props: dict[str, dict[str, list[str]]] = {}  # re-read on every Init
        self._schema: dict[str, Attr] = {}
        created = hasattr(self, "_attr_table_defaults")
        if not created:
            self._attr_table_defaults: dict[str, dict[str, str]] = {}
            self._attr_device_defaults: dict[str, dict[str, str]] = {}
            self._attr_units: dict[str, str] = {}
            self._attributes: dict[str, bool] = {}  # name → writable; fixed at server start
        self._published: tuple[Any, ...] = ()  # (snapshot, comm, stale) last pushed
        self._published_result = ""
        # What each attribute's last events carried: a snapshot republished after a job (it
        # learned another key) pushes only what changed, so a client never gets a reading again
        # with its old time stamp, as if it had just come late.
        self._pushed: dict[str, tuple[Any, float, AttrQuality]] = {}
        self._write_values: dict[str, Any] = {}
        self.set_state(DevState.INIT)
        self.set_status("Connecting to the instrument")
        for name in ("LastCommandResult",):
            self.set_change_event(name, True, False)
            self.set_archive_event(name, True, False)
        # The cycle time follows each refresh; Tango's detection applies the DB's thresholds.
        self.set_change_event("RoundTripTime", True, True)
        self.set_archive_event("RoundTripTime", True, True)
        try:
            driver = self.create_driver()
        except Exception as exc:
            self._configuration_fault(exc)
            return
        if created:
            # Init: the attributes stay as they are; their configuration follows the properties
            # and the DB again.
            self.initialize_dynamic_attributes()
            if self._config_error:
                return
        self.worker = IOWorker(self.get_name(), driver, self.RefreshPeriod / 1000.0)
        self._publisher = Publisher(self, self.get_name())
        self.worker.on_update = self._publisher.wake
        self.worker.start()

    def delete_device(self) -> None:
        self._stop_worker()
        super().delete_device()

    def _stop_worker(self) -> None:
        if getattr(self, "_publisher", None) is not None:
            self._publisher.stop()
            self._publisher = None
        if getattr(self, "worker", None) is not None:
            self.worker.on_update = None
            self.worker.stop()
            self.worker = None

    def _configuration_fault(self, exc: BaseException | str) -> None:
        """A device property is wrong: this device alone goes FAULT, saying which property and
        what it accepts; the server and its other devices keep running; Init retries."""
        self._stop_worker()
        if self._config_error:
            return  # the first error names the property; what follows from it says less
        self._config_error = str(exc)
        self.set_state(DevState.FAULT)
        self.set_status(f"Configuration error: {exc}.\nFix the device property, then run Init.")
        self.error_stream(f"configuration error: {exc}")

    # ---- attributes: created once, at server start -------------------------------------------
    def initialize_dynamic_attributes(self) -> None:
        """Create the attributes the device's tables give (server start), or check that they
        are still the same (Init).

        The attribute set is fixed while the server runs: adding and removing attributes of a
        running device races with cppTango's event supply (it crashed the server under load),
        so a changed Family or Commands takes effect at the next server start, and Init says so.
        """
        first = not self._attributes
        self._wanted: dict[str, bool] = {}
        try:
            self.create_attributes()
        except Exception as exc:
            self._configuration_fault(exc)
            return
        if first:
            self._attributes = dict(self._wanted)
            # A device re-created by DevRestart starts from every attribute its class has seen
            # (other devices' families): it must offer only its own.
            present = {attr.get_name() for attr in self.get_device_attr().get_attribute_list()}
            for name in present - set(self._wanted) - self._static_attribute_names():
                self.remove_attribute(name, False, False)  # the DB entries belong to the site
        elif set(self._wanted) != set(self._attributes):
            added = sorted(set(self._wanted) - set(self._attributes))
            removed = sorted(set(self._attributes) - set(self._wanted))
            change = "; ".join(
                part for part in (
                    f"adds {', '.join(added)}" if added else "",
                    f"removes {', '.join(removed)}" if removed else "",
                ) if part
            )
            self._configuration_fault(
                f"the new properties change the attribute set ({change}), which is fixed while "
                "the server runs. Restart the server (e.g. systemctl restart PlantDS@<instance>) "
                "to apply them, or restore the previous values"
            )
            return
        for name in self._attributes:
            # A new attribute got the table's and the DB's values from Tango; it needs only the
            # per-device defaults. On Init every attribute gets everything again.
            if not first or name in self._attr_device_defaults or name in self._attr_units:
                self._apply_attribute_config(name)

    def add_snapshot_attribute(self, name: str, fset: Callable | None = None, **props) -> None:
        """Declare a dynamic attribute read from the snapshot under ``name``.

        Dynamic, because the read method then receives the attribute (one generic reader for all)
        and because units, families and command tables decide which attributes exist. ``fset(attr)``
        makes it read/write. Events are pushed by the device (:meth:`publish`), with Tango's
        detection of the DB's change and archive thresholds.
        """
        self._wanted[name] = fset is not None
        table = {CONFIG_ALIASES.get(k, k): str(v) for k, v in props.items() if CONFIG_ALIASES.get(k, k) in CONFIG_KEYS}
        self._attr_table_defaults[name] = table
        if self._attributes:
            return  # Init: Tango keeps the attribute; its configuration is applied again
        access = AttrWriteType.READ_WRITE if fset else AttrWriteType.READ
        # This device's own defaults go in at creation: when they are what Tango then holds,
        # nothing needs applying, so an unchanged start writes nothing to the Tango DB.
        props.update(self._attr_device_defaults.get(name, {}))
        if name in self._attr_units:
            props["unit"] = self._attr_units[name]
        props = {("doc" if k == "description" else k): v for k, v in props.items()}
        self.add_attribute(
            attribute(name=name, fget=self.read_from_snapshot, fset=fset, access=access, **props)
        )
        self.set_change_event(name, True, True)
        self.set_archive_event(name, True, True)

    def _static_attribute_names(self) -> set[str]:
        names = {"State", "Status"}
        for cls in type(self).__mro__:
            names.update(n for n, v in vars(cls).items() if isinstance(v, attribute))
        return names

    def set_device_defaults(self, name: str, unit: str | None = None, **defaults: str) -> None:
        """Per-device attribute defaults that depend on device properties (units, converted limits).

        Call it before :meth:`add_snapshot_attribute` of the same name. Dynamic attributes of one
        name share their class-level defaults across devices, so these are applied per device,
        once :meth:`create_attributes` has run: ``unit`` always (it must match the conversion the
        device does), the others where the DB does not set them.
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
        current = attr.get_properties()
        if all(_same_setting(getattr(current, k), getattr(props, k)) for k in CONFIG_KEYS):
            return  # already so: set_properties would only write to the DB
        try:
            attr.set_properties(props)
        except tango.DevFailed as exc:
            # e.g. a DB max_alarm below the default min_alarm: keep the device running and say so.
            self.error_stream(f"attribute {name}: configuration not applied: {exc.args[0].desc}")
        self._restore_db_entries(name, configured)

    def _restore_db_entries(self, name: str, configured: dict) -> None:
        """Undo the DB writes ``set_properties`` makes, so the DB keeps only what the site set.

        cppTango stores every property it is given; our defaults are not site configuration and
        must not become it (a later unit change would otherwise inherit stale limits). It also
        deletes a device's entry whose value equals the attribute's class-level default (for a
        dynamic attribute, the first device's), so a site's entries are put back as they were.
        """
        if not tango.Util._UseDb:
            return
        db = tango.Util.instance().get_database()
        db.delete_device_attribute_property(
            self.get_name(), {name: [k for k in CONFIG_KEYS if k not in configured]}
        )
        now = db.get_device_attribute_property(self.get_name(), [name]).get(name, {})
        lost = {k: v for k, v in configured.items() if k in CONFIG_KEYS and list(now.get(k, [])) != list(v)}
        if lost:
            db.put_device_attribute_property(self.get_name(), {name: lost})

    def _db_attribute_properties(self, name: str) -> dict[str, list[str]]:
        """The attribute's properties in the Tango DB, read once per Init and attribute."""
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

    # ---- State / Status ----------------------------------------------------------------------
    def _current_state(self) -> tuple[DevState, str]:
        worker = self.worker
        if worker is None:
            return self.get_state(), self.get_status()
        if worker.comm is Comm.CONNECTING:
            return DevState.INIT, "Connecting to the instrument"
        if worker.comm is Comm.LOST:
            return DevState.UNKNOWN, (
                "Instrument not reachable; retrying automatically.\n"
                + (worker.hint or "Check power, cable and network (details in LastError).")
            )
        if worker.comm is Comm.MISMATCH:
            return DevState.FAULT, f"The instrument's replies do not fit the configuration:\n{worker.reason}"
        if worker.snapshot.time == 0.0:
            return DevState.INIT, "Connected; waiting for the first refresh"
        if worker.is_stale():
            age = time.time() - worker.snapshot.time
            return DevState.UNKNOWN, f"No fresh data from the instrument for {age:.0f} s; retrying"
        state, status = self.instrument_state(dict(worker.snapshot.values))
        if state is not DevState.FAULT:
            if worker.settling is not None:
                state, status = DevState.MOVING, worker.settling.doing[:1].upper() + worker.settling.doing[1:]
            elif worker.command_failure:
                state, status = DevState.ALARM, worker.command_failure
        period_ms = self.RefreshPeriod
        if worker.round_trip_ms > 1.2 * period_ms and "\n" not in status:
            suggested = int(math.ceil(worker.round_trip_ms * 1.5 / 500.0) * 500)
            status += (f"\nRefresh cycle takes {worker.round_trip_ms:.0f} ms, longer than RefreshPeriod "
                       f"{period_ms} ms: set RefreshPeriod to {suggested} or more")
        return state, status

    def dev_state(self) -> DevState:
        state, status = self._current_state()
        if self.ReadOnly and self.worker is not None:
            first, _, rest = status.partition("\n")
            status = f"{first} (ReadOnly device)" + (f"\n{rest}" if rest else "")
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
        spec = self._schema.get(key)
        if spec is not None and spec.joins:
            items, stamp, valid = self.snapshot_value(spec.joins)
            return ", ".join(items or ()), stamp, valid
        worker = self.worker
        if worker is None:
            return None, time.time(), False
        snap = worker.snapshot
        value = snap.values.get(key)
        valid = worker.comm is Comm.CONNECTED and not worker.is_stale() and value is not None
        return value, snap.stamp(key) or time.time(), valid

    def _reading(self, attr: tango.Attribute) -> tuple[Any, float, AttrQuality]:
        value, stamp, valid = self.snapshot_value(attr.get_name())
        if valid:
            return value, stamp, AttrQuality.ATTR_VALID
        # Stamped now, not with the last good snapshot's time: an archiver keys rows on the
        # timestamp (HDB++ refuses a second row at the same time), so the outage must be new.
        return self.invalid_placeholder(attr), time.time(), AttrQuality.ATTR_INVALID

    def read_from_snapshot(self, attr: tango.Attribute):
        """Generic read method: the attribute's name is its key in the snapshot."""
        return self._reading(attr)

    @staticmethod
    def invalid_placeholder(attr: tango.Attribute) -> Any:
        if attr.get_data_format() != tango.AttrDataFormat.SCALAR:
            return [""] if attr.get_data_type() == tango.CmdArgType.DevString else []
        return _INVALID_PLACEHOLDER.get(attr.get_data_type(), 0)

    # ---- events, write values, polling buffer ------------------------------------------------
    def publish(self, fill_polling_buffer: bool = False) -> None:
        """Push what the current snapshot holds (with the device's monitor held).

        Change and archive events for every snapshot attribute at each new snapshot (Tango's
        detection sends only what the DB's thresholds and archive_period call for); the write
        value of each writable attribute follows the instrument (a front-panel change too), so a
        GUI's write field never offers a stale value; after a job, the polling buffer of each
        polled attribute gets the fresh value, so a client reading from it sees the new value at
        once.
        """
        worker = self.worker
        if worker is None:
            return
        current = (worker.snapshot, worker.comm, worker.is_stale())
        fresh = current != self._published
        if fresh or fill_polling_buffer:
            self._push_attributes(fill_polling_buffer, push=fresh)
        if fresh:
            rtt, stamp, quality = self._round_trip()
            self.push_change_event("RoundTripTime", rtt, stamp, quality)
            self.push_archive_event("RoundTripTime", rtt, stamp, quality)
        self._published = current
        result = worker.last_result
        if result != self._published_result:
            self.push_change_event("LastCommandResult", result)
            self.push_archive_event("LastCommandResult", result)
            self._published_result = result

    def _push_attributes(self, fill_polling_buffer: bool, push: bool) -> None:
        multi = self.get_device_attr()
        util = tango.Util.instance()
        for name, writable in self._attributes.items():
            attr = multi.get_attr_by_name(name)
            value, stamp, quality = self._reading(attr)
            if push and not _same_reading(self._pushed.get(name), (value, stamp, quality)):
                self.push_change_event(name, value, stamp, quality)
                self.push_archive_event(name, value, stamp, quality)
                self._pushed[name] = (value, stamp, quality)
            # The write value first: a polling-thread read in between, and the buffer entry
            # below, must both carry the instrument's set value, never the previous one.
            if writable and quality is AttrQuality.ATTR_VALID and self._write_values.get(name) != value:
                multi.get_w_attr_by_name(name).set_write_value(value)
                self._write_values[name] = value
            if fill_polling_buffer and self.is_attribute_polled(name):
                w_value = self._write_values.get(name) if writable else None
                util.fill_attr_polling_buffer(
                    self, name, tango.TimedAttrData(value=value, quality=quality, w_value=w_value, time_stamp=stamp)
                )

    # ---- writes and commands -----------------------------------------------------------------
    def check_writable(self, what: str) -> None:
        if self.ReadOnly:
            fail(
                REASON_READ_ONLY,
                f"{what} refused: this device is configured ReadOnly (device property ReadOnly=true). "
                "Nothing was sent to the instrument.",
            )

    def run_on_instrument(self, what: str, job: Callable[[Any], Any], changes_instrument: bool = True) -> Any:
        """Run ``job(driver)`` on the I/O worker, between two transactions, and wait for it.

        The client gets an answer within :data:`CLIENT_DEADLINE_S`: the job's result, or that it
        was withdrawn unsent, or (if it started but the instrument is slow) that its outcome will
        be in LastCommandResult. The device's monitor is released while waiting, so reads of
        this device are served meanwhile. Every instrument error becomes a DevFailed with a
        message the operator can act on. A job that only reads (``changes_instrument=False``) is
        allowed on a ReadOnly device and leaves LastCommandResult alone.
        """
        deadline = time.monotonic() + CLIENT_DEADLINE_S
        if changes_instrument:
            self.check_writable(what)
        if self.worker is None:
            fail(REASON_CONFIG, f"{what} refused: the device is not configured ({self.get_status()})")
        future = self.worker.submit(job, what, deadline=deadline, record=changes_instrument)
        with tango.AutoTangoAllowThreads(self):
            concurrent.futures.wait([future], timeout=max(0.0, deadline - time.monotonic()))
        if not future.done():
            if future.cancel():
                fail(REASON_NOT_REACHABLE, (
                    f"{what} was withdrawn: the instrument stayed busy for {CLIENT_DEADLINE_S:g} s "
                    "(slow or unanswered requests ahead of it). Nothing was sent; try again."))
            fail(REASON_PENDING, (
                f"{what} was sent, but the instrument has not answered within {CLIENT_DEADLINE_S:g} s. "
                "It is not repeated; its outcome will be in LastCommandResult and Status."))
        try:
            result = future.result()
        except Withdrawn as exc:
            fail(REASON_NOT_REACHABLE, f"{exc}; nothing was sent, try again")
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
        finally:
            if future.done() and not future.cancelled():
                self._publish_before_reply()
        return result

    def _publish_before_reply(self) -> None:
        """Before the client has its answer: a read right after it must see the new value."""
        try:
            self.publish(fill_polling_buffer=True)
        except tango.DevFailed as exc:  # the job's own outcome matters more than its events
            self.error_stream(f"publishing after a job failed: {exc.args[0].desc}")

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
        doc="Duration of the last refresh cycle on the wire (jobs run in it included); change "
            "events with the DB's abs_change/rel_change. Longer than RefreshPeriod: Status says so",
    )
    def RoundTripTime(self):
        return self._round_trip()

    def _round_trip(self) -> tuple[float, float, AttrQuality]:
        rtt = self.worker.round_trip_ms if self.worker else float("nan")
        if math.isnan(rtt):
            return 0.0, time.time(), AttrQuality.ATTR_INVALID
        return rtt, self.worker.last_update or time.time(), AttrQuality.ATTR_VALID

    @attribute(
        dtype=str,
        label="Last command result",
        doc="Outcome of the last command or write: accepted, reached (e.g. 'On: compressor "
            "Running'), or what failed; change and archive events on each new result",
    )
    def LastCommandResult(self) -> str:
        return self.worker.last_result if self.worker else ""

    @attribute(
        dtype=str,
        label="Last error",
        doc="Technical detail of the last communication or configuration error (the Status "
            "gives the short form)",
    )
    def LastError(self) -> str:
        if self._config_error:
            return self._config_error
        return self.worker.last_error if self.worker else ""


def _same_setting(current: str, wanted: str) -> bool:
    """Two attribute-property texts that mean the same ("27.58" and "27.580", "0.3" and "-0.3,0.3"
    for a symmetric change threshold)."""
    if current == wanted:
        return True
    try:
        now = sorted({abs(float(v)) for v in str(current).split(",")})
        new = sorted({abs(float(v)) for v in str(wanted).split(",")})
        signs_now = {float(v) < 0 for v in str(current).split(",")}
        signs_new = {float(v) < 0 for v in str(wanted).split(",")}
    except ValueError:
        return False
    return now == new and (signs_now == signs_new or len(str(wanted).split(",")) == 1)


def _number(text: str, default: float) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):  # "Not specified"
        return default


def _same_reading(last: tuple[Any, float, AttrQuality] | None, now: tuple[Any, float, AttrQuality]) -> bool:
    """The same value, time stamp and quality (spectra compared element by element)."""
    if last is None or last[1:] != now[1:]:
        return False
    try:
        return bool(last[0] == now[0])
    except ValueError:  # numpy arrays: == is element-wise
        return list(last[0]) == list(now[0])
