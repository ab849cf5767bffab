"""A server restart (a Starter restart, a host reboot) loses nothing it should keep and never
switches an instrument on by itself: what the compressor panel receives during and after the
restart is reads only, and a running compressor is found running again."""

from __future__ import annotations

import pytest
import tango
from tango import AttrMemorizedType, DevState

from plantds.devices.cryomech import protocol
from plantds.server.testing import wait_for

pytestmark = pytest.mark.integration

FC_READ_INPUT_REGISTERS = 4
# Attributes a device may write to its instrument when it starts (hardware-memorized), each
# with the reason that is safe. None may switch an instrument on.
WRITTEN_AT_START: dict[str, str] = {}


def modbus_function_codes(stream: bytes) -> list[int]:
    """Function codes of the Modbus TCP requests in ``stream`` (7-byte MBAP header, then PDU)."""
    codes, i = [], 0
    while i < len(stream):
        length = int.from_bytes(stream[i + 4 : i + 6], "big")  # unit id + PDU
        codes.append(stream[i + 7])
        i += 6 + length
    assert i == len(stream), "the panel received a partial Modbus frame"
    return codes


def two_more_refreshes(proxy: tango.DeviceProxy) -> None:
    first = proxy.read_attribute("LastUpdate").value
    wait_for(lambda: proxy.read_attribute("LastUpdate").value >= first + 1.0, what="two refresh cycles")


def test_restart_never_switches_an_idle_compressor_on(demo_plant, compressor):
    cpa, sim = compressor
    sim.received_bytes(clear=True)
    demo_plant.restart_server()
    two_more_refreshes(cpa)

    codes = modbus_function_codes(sim.received_bytes())
    assert codes and set(codes) == {FC_READ_INPUT_REGISTERS}, codes
    assert sim.operating_state == protocol.IDLE
    assert cpa.state() == DevState.OFF


def test_restart_finds_a_running_compressor_running(demo_plant, compressor):
    cpa, sim = compressor
    cpa.On()
    wait_for(lambda: cpa.state() == DevState.ON, what="compressor running")
    hours = cpa.HoursOfOperation
    sim.received_bytes(clear=True)
    demo_plant.restart_server()
    two_more_refreshes(cpa)

    codes = modbus_function_codes(sim.received_bytes())
    assert codes and set(codes) == {FC_READ_INPUT_REGISTERS}, codes
    assert sim.operating_state == protocol.RUNNING
    assert cpa.state() == DevState.ON
    assert cpa.HoursOfOperation >= hours


def test_no_attribute_is_written_to_an_instrument_at_start_unless_listed(demo_plant):
    for device in demo_plant.devices:
        proxy = demo_plant.proxy(device)
        for cfg in proxy.attribute_list_query_ex():
            if cfg.memorized == AttrMemorizedType.MEMORIZED_WRITE_INIT:
                assert f"{device}/{cfg.name}" in WRITTEN_AT_START, (
                    f"{device}/{cfg.name} is written to the instrument at every start"
                )
