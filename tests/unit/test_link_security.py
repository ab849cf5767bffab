"""Url forms and shared links (issue 9, security): only the documented transports are opened,
pyserial's file-writing URL handlers never, and one physical port is one link.

Real ports only: the conflicting-settings case uses a pseudo-terminal, opened like /dev/ttyUSB0.
"""

from __future__ import annotations

import os

import pytest

from plantds.devices.coleparmer.driver import NcDriver
from plantds.devices.cryomech.driver import CpaDriver
from plantds.devices.rotex.driver import HpsuDriver
from plantds.devices.rotex.transport import opener
from plantds.server import links
from plantds.server.errors import ConfigMismatch, PortConflict

HOSTILE_TARGETS = [
    "spy:///dev/ttyUSB0?file={file}",
    "loop://?logging=debug",
    "hwgrep://.*",
    "alt:///dev/ttyUSB0?class=PosixPollSerial",
    "{file}",
    "/dev/../{file}",
    "/dev/shm/../../{file}",
]


@pytest.fixture
def victim(tmp_path):
    """A file that must stay untouched by every refused Url."""
    path = tmp_path / "victim"
    path.write_text("keep me")
    yield str(path)
    assert path.read_text() == "keep me"


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_chiller_url_accepts_only_ports_and_network_forms(target, victim):
    with pytest.raises(ValueError, match="expected /dev/<port>, socket://host:port or rfc2217"):
        NcDriver(target.format(file=victim))


@pytest.mark.parametrize("target", HOSTILE_TARGETS + ["socket://host", "socket://h:1/x"])
def test_compressor_serial_url_refuses_what_pyserial_would_open_as_a_file(target, victim):
    with pytest.raises(ValueError, match="expected tcp://host"):
        CpaDriver("serial://" + target.format(file=victim))


@pytest.mark.parametrize(
    "url",
    [
        "elm327://{file}",
        "elm327:///dev/../{file}",
        "elm327:///dev/ttyUSB0?baudrate=38400&logfile=/tmp/x",
        "elm327:///dev/ttyUSB0?baudrate=-1",
        "elm327+tcp://host:35000/x",
        "socketcand://host/can0?x=1",
        "spy://x",
    ],
)
def test_heat_pump_url_forms(url, victim):
    with pytest.raises(ValueError, match="Url"):
        HpsuDriver(url.format(file=victim))


def test_a_regular_file_under_dev_is_not_a_port(tmp_path):
    # /dev/shm is a tmpfs anyone can write: a file there is still a file.
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm")
    path = f"/dev/shm/plantds-test-{os.getpid()}"
    open(path, "w").close()
    try:
        with pytest.raises(ValueError, match="regular file"):
            NcDriver(path)
    finally:
        os.unlink(path)


def test_documented_forms_are_accepted():
    NcDriver("/dev/ttyUSB0")
    NcDriver("socket://terminal-server:4001")
    NcDriver("rfc2217://terminal-server:4001")
    CpaDriver("serial:///dev/ttyUSB0")
    CpaDriver("serial://socket://127.0.0.1:5020")
    CpaDriver("tcp://cpa.example.org")
    CpaDriver("rtu+tcp://gw:4001")
    for url in ("socketcan://can0", "socketcand://host/can0", "elm327:///dev/ttyUSB0",
                "elm327:///dev/ttyUSB0?baudrate=38400", "elm327+tcp://host", "virtual://x"):
        HpsuDriver(url)


def test_link_keys_are_the_physical_port():
    nodes = [0x180]
    assert opener("elm327:///dev/ttyUSB0", nodes).key == \
        opener("elm327:///dev/ttyUSB0?baudrate=38400", nodes).key
    assert opener("elm327+tcp://Bridge.Example.org:35000", nodes).key == \
        opener("elm327+tcp://bridge.example.org", nodes).key
    assert CpaDriver("tcp://CPA.example.org").key == CpaDriver("tcp://cpa.example.org:502").key
    assert NcDriver("socket://TS:4001")._key == NcDriver("socket://ts:4001")._key
    # The same gateway port: one link, whichever class names it.
    assert CpaDriver("rtu+tcp://gw:4001").key == NcDriver("socket://GW:4001")._key


@pytest.fixture
def pty_path():
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_conflicting_line_settings_on_one_port_are_a_configuration_error(pty_path):
    first = NcDriver(pty_path, baudrate=9600, timeout=0.05, retries=0)
    second = NcDriver(pty_path, address=1, baudrate=19200, timeout=0.05, retries=0)
    other_protocol = CpaDriver("serial://" + pty_path, baudrate=9600, timeout=0.05, retries=0)
    try:
        with pytest.raises(Exception):
            first.connect()  # nothing answers on the pty; the link is acquired all the same
        for driver, what in ((second, "baudrate 19200"), (other_protocol, "Modbus RTU")):
            with pytest.raises(PortConflict, match=what) as err:
                driver.connect()
            assert isinstance(err.value, ValueError) and isinstance(err.value, ConfigMismatch)
    finally:
        for driver in (first, second, other_protocol):
            driver.close()
    assert not links._registry


def test_serial_ports_are_opened_exclusively(pty_path):
    """A second program on the port would interleave frames: pyserial's exclusive lock."""
    import serial

    holder = serial.Serial(pty_path, exclusive=True)
    try:
        driver = NcDriver(pty_path, timeout=0.05, retries=0)
        with pytest.raises(Exception, match="exclusive|lock|Resource temporarily unavailable"):
            driver.connect()
        driver.close()
    finally:
        holder.close()


def test_tcp_url_with_options_is_refused():
    with pytest.raises(ValueError, match="no path or options"):
        CpaDriver("tcp://host:502?x=1")
