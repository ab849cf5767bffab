"""Integration tests: the real C++ DataBaseds on MariaDB, as a facility runs it.

They need Debian's tango-db and mariadb-server (``deploy/tangodb.sh install``) and run only when
asked: ``PLANTDS_REAL_DB=1 pytest`` or ``pytest --real-db`` (the option is registered in
``tests/conftest.py``). Otherwise every test marked ``integration`` is skipped, saying how to
enable it.

One database serves the whole session: ``deploy/tangodb.sh start`` brings it up on a free
loopback port with its state in a pytest temporary folder, and ``stop`` always takes it down.
On it runs the demo plant exactly as a site runs its own: ``plantds config load`` of the
shipped files (devices, then archiving), the instruments (here the demo's simulators) and the
``PlantDS demo`` server process. The simulators run on free loopback ports, and the loaded
demo.json is the site template with its Urls there (as ``plantds demo --port-base`` makes it), so
a demo or another test run on the same host never collides with this one.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tango

from plantds.devices.cryomech.simulator import CpaSimulator
from plantds.server import archiving, config, demo
from plantds.server.processes import plantds_server
from plantds.server.testing import client_proxy, free_ports, wait_for

TANGODB_SH = Path(__file__).resolve().parents[2] / "deploy" / "tangodb.sh"
ENABLE_HINT = "set PLANTDS_REAL_DB=1 or pass --real-db (needs `deploy/tangodb.sh install` once)"
# A device is ready once it has reached its instrument (neither connecting nor unreachable).
NOT_READY = (tango.DevState.INIT, tango.DevState.UNKNOWN)


def real_db_enabled(config: pytest.Config) -> bool:
    return os.environ.get("PLANTDS_REAL_DB") == "1" or config.getoption("--real-db")


def pytest_collection_modifyitems(config, items):
    if real_db_enabled(config):
        return
    skip = pytest.mark.skip(reason=f"integration test against the real Tango DB: {ENABLE_HINT}")
    for item in items:
        if item.get_closest_marker("integration"):
            item.add_marker(skip)


def tangodb(command: str, state: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(TANGODB_SH), command],
        env={**os.environ, "PLANTDS_STATE": str(state)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextlib.contextmanager
def private_tango_db(state: Path) -> Iterator[str]:
    """A fresh MariaDB + DataBaseds with its state in ``state``; yields its TANGO_HOST."""
    try:
        started = tangodb("start", state)
        if started.returncode != 0:
            pytest.fail(
                f"deploy/tangodb.sh start failed ({started.returncode}):\n{started.stderr}"
                f"\nlogs in {state}",
                pytrace=False,
            )
        lines = [ln for ln in started.stdout.splitlines() if ln.startswith("TANGO_HOST=")]
        yield lines[-1].split("=", 1)[1]
    finally:
        stopped = tangodb("stop", state)
        assert stopped.returncode == 0, f"deploy/tangodb.sh stop failed:\n{stopped.stderr}"


@pytest.fixture(scope="session")
def real_tango_db(request, tmp_path_factory) -> Iterator[str]:
    """TANGO_HOST ("127.0.0.1:PORT") of a fresh MariaDB-backed DataBaseds, exported for the
    session."""
    if not real_db_enabled(request.config):
        pytest.skip(ENABLE_HINT)
    previous = os.environ.get("TANGO_HOST")
    try:
        with private_tango_db(tmp_path_factory.mktemp("tangodb")) as tango_host:
            os.environ["TANGO_HOST"] = tango_host
            yield tango_host
    finally:
        if previous is None:
            os.environ.pop("TANGO_HOST", None)
        else:
            os.environ["TANGO_HOST"] = previous


def plantds_config(action: str, *args: str, tango_host: str, scratch: Path) -> subprocess.CompletedProcess:
    """``plantds config <action> <args>`` as an operator types it, against ``tango_host``."""
    # Its temporary files (and json2tango's, were they kept) go to ``scratch``, never to /tmp.
    env = {**os.environ, "TANGO_HOST": tango_host, "TMPDIR": str(scratch)}
    return subprocess.run(
        [sys.executable, "-m", "plantds.server.cli", "config", action, *args],
        env=env, capture_output=True, text=True, timeout=120,
    )


@dataclass(frozen=True)
class ArchivedAttribute:
    """One entry of an HDB++ subscriber's AttributeList (as db/archiving.json writes them)."""

    entry: str  # as written in the property, e.g. tango://host:port/plant/compressor/1/x;strategy=ALWAYS
    tango_host: str
    device: str
    attribute: str

    @classmethod
    def parse(cls, entry: str) -> ArchivedAttribute:
        name = entry.split(";", 1)[0]
        assert name.startswith("tango://"), f"AttributeList entry {entry!r} is not a tango:// name"
        host, device_and_attribute = name[len("tango://"):].split("/", 1)
        device, _, attribute = device_and_attribute.rpartition("/")
        assert device.count("/") == 2, f"AttributeList entry {entry!r} does not name domain/family/member/attribute"
        return cls(entry, host, device, attribute)

    def __str__(self) -> str:
        return f"{self.device}/{self.attribute}"


class EventLog:
    """A subscription's callback: keeps every event with its reception time (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[tuple[float, tango.EventData]] = []

    def push_event(self, event: tango.EventData) -> None:
        with self._lock:
            self._events.append((time.monotonic(), event))

    def since(self, mark: float = 0.0) -> list[tango.EventData]:
        with self._lock:
            return [event for received, event in self._events if received >= mark]

    def values_since(self, mark: float = 0.0) -> list:
        """Values of the events received since ``mark`` that carry one: errors, and INVALID
        readings (None: right after Init, or stale on a loaded machine), left out."""
        return [e.attr_value.value for e in self.since(mark)
                if not e.err and e.attr_value.quality != tango.AttrQuality.ATTR_INVALID]


class DemoPlant:
    """The demo plant on the real Tango DB: its configuration, simulators and PlantDS server."""

    def __init__(self, tango_host: str, workdir: Path):
        self.tango_host = tango_host
        self.workdir = workdir
        self.devices = demo.demo_devices()
        self.first_simulator_port = free_ports(demo.SIMULATOR_PORTS)
        # What the session loads: the demo's configuration with its Urls on those ports.
        self.config_files = demo.config_files(workdir, self.first_simulator_port)
        self.simulators: list = []
        self._proxies: dict[str, tango.DeviceProxy] = {}
        self._stack = contextlib.ExitStack()
        self._server: contextlib.ExitStack | None = None

    # -- configuration ---------------------------------------------------------------------
    def config(self, action: str, *args: str) -> subprocess.CompletedProcess:
        return plantds_config(action, *args, tango_host=self.tango_host, scratch=self.workdir)

    def load_shipped_config(self) -> None:
        """``plantds config load`` of every file the demo loads, in its order."""
        for path in self.config_files:
            done = self.config("load", str(path))
            assert done.returncode == 0, f"plantds config load {path} failed:\n{done.stdout}{done.stderr}"

    def archived(self) -> list[ArchivedAttribute]:
        """What db/archiving.json archives (``plantds archive apply``), with this TANGO_HOST."""
        plan = archiving.read_plan(config.bundled("archiving.json"), self.tango_host)
        return [ArchivedAttribute.parse(f"{e.attribute};strategy={e.strategy}") for e in plan.entries]

    # -- processes -------------------------------------------------------------------------
    def start(self) -> None:
        for sim in demo.simulators(self.first_simulator_port):
            self.simulators.append(self._stack.enter_context(sim))
        self.start_server()

    def start_server(self) -> None:
        self._server = contextlib.ExitStack()
        self._server.enter_context(
            plantds_server("demo", list(self.devices), self.tango_host, self.workdir / "PlantDS-demo.log")
        )
        self.wait_ready()

    def stop_server(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def restart_server(self) -> None:
        """Stop the PlantDS process and start it again (a Starter restart, a host reboot)."""
        self.stop_server()
        self.start_server()

    def stop(self) -> None:
        self.stop_server()
        self._stack.close()

    def init_device(self, name: str) -> None:
        """The device's Init command (Jive's *Init*): it reads its properties and its attributes'
        configuration from the DB again."""
        self.proxy(name).Init()
        wait_for(lambda: self.proxy(name).state() not in NOT_READY, what=f"{name} ready after Init")

    def attribute_properties(self, name: str) -> dict[str, dict[str, list[str]]]:
        """Every attribute property the DB holds for device ``name``: attribute → key → value."""
        db = tango.Database()
        attributes = tango.StdStringVector()
        db.get_device_attribute_list(name, attributes)
        stored = db.get_device_attribute_property(name, list(attributes)) if attributes else {}
        return {attr: {k: list(v) for k, v in props.items()} for attr, props in stored.items() if props}

    def wait_ready(self) -> None:
        """Every device reached its instrument, and Tango's polling buffers (what clients,
        TangoGQL and the archiver read) already hold values of a refresh: the heat pump's first
        refresh (many commands on a busy bus) can end after the first polling cycle."""
        for name in self.devices:
            proxy = self.proxy(name)
            wait_for(lambda: proxy.state() not in NOT_READY, timeout=60, what=f"{name} reaching its instrument")
            wait_for(lambda: proxy.read_attribute("State").value not in NOT_READY, timeout=60,
                     what=f"{name}: polled State")
            archived = [e.attribute for e in self.archived() if e.device == name]
            wait_for(lambda: all(proxy.read_attribute(a).quality != tango.AttrQuality.ATTR_INVALID
                                 for a in archived), timeout=60, what=f"{name}: polled values valid")

    # -- access ----------------------------------------------------------------------------
    def proxy(self, name: str) -> tango.DeviceProxy:
        if name not in self._proxies:
            self._proxies[name] = client_proxy(f"tango://{self.tango_host}/{name}")
        return self._proxies[name]

    def simulator(self, cls: type):
        return next(sim for sim in self.simulators if isinstance(sim, cls))


@pytest.fixture(scope="session")
def demo_plant(real_tango_db, tmp_path_factory) -> Iterator[DemoPlant]:
    plant = DemoPlant(real_tango_db, tmp_path_factory.mktemp("demo-plant"))
    plant.load_shipped_config()
    try:
        plant.start()
        yield plant
    finally:
        plant.stop()


@pytest.fixture
def shipped_config(demo_plant) -> Iterator[DemoPlant]:
    """For tests that edit the DB as an operator would: afterwards the shipped files are loaded
    again and the server restarted, so the next test finds the plant as db/ describes it."""
    yield demo_plant
    demo_plant.load_shipped_config()
    demo_plant.restart_server()


@pytest.fixture
def fresh_tango_db(tmp_path_factory) -> Iterator[str]:
    """TANGO_HOST of another, empty, real Tango DB: a facility's before its first load."""
    with private_tango_db(tmp_path_factory.mktemp("fresh-db")) as tango_host:
        yield tango_host


@pytest.fixture
def config_tool(tmp_path):
    """``config_tool(action, *args, tango_host=...)``: ``plantds config`` as an operator runs it."""
    return functools.partial(plantds_config, scratch=tmp_path)


@pytest.fixture
def subscribe() -> Iterator:
    """``subscribe(proxy, attribute, event_type) -> EventLog``; unsubscribed after the test."""
    subscriptions: list[tuple[tango.DeviceProxy, int]] = []

    def _subscribe(proxy: tango.DeviceProxy, attribute: str, event_type: tango.EventType) -> EventLog:
        log = EventLog()
        subscriptions.append((proxy, proxy.subscribe_event(attribute, event_type, log)))
        return log

    yield _subscribe
    for proxy, event_id in subscriptions:
        with contextlib.suppress(tango.DevFailed):
            proxy.unsubscribe_event(event_id)


COMPRESSOR = "plant/compressor/1"


@pytest.fixture
def compressor(demo_plant) -> Iterator[tuple[tango.DeviceProxy, CpaSimulator]]:
    """The demo's compressor and its simulated panel; left idle and fault-free afterwards."""
    proxy, sim = demo_plant.proxy(COMPRESSOR), demo_plant.simulator(CpaSimulator)
    yield proxy, sim
    sim.set_warnings(0)
    sim.clear_faults()
    wait_for(lambda: proxy.state() not in NOT_READY, what="compressor reachable")
    if proxy.state() in (tango.DevState.ON, tango.DevState.MOVING):
        wait_for(lambda: proxy.state() == tango.DevState.ON, what="compressor running")
        proxy.Off()
    wait_for(lambda: proxy.state() == tango.DevState.OFF, what="compressor idle again")
