"""bluesky plans with plantds.ophyd on the simulated plant: a scan over the chiller set point and
a count over the three instruments, checked in the documents the RunEngine emits."""

from __future__ import annotations

import pytest

pytest.importorskip("ophyd_async.tango", reason="the [bluesky] extra (ophyd-async, bluesky) is not installed")
pytest.importorskip("bluesky", reason="the [bluesky] extra (ophyd-async, bluesky) is not installed")

from bluesky import RunEngine  # noqa: E402
from bluesky import plan_stubs as bps  # noqa: E402
from bluesky import plans as bp  # noqa: E402
from ophyd_async.core import init_devices  # noqa: E402

from plantds.ophyd import Chiller, ChillerSetpoint, Compressor, HeatPump  # noqa: E402
from plantds.server.testing import wait_for  # noqa: E402


@pytest.fixture(scope="module")
def engine():
    RE = RunEngine({}, call_returns_result=True)
    yield RE


@pytest.fixture(scope="module")
def devices(engine, plant):
    with init_devices():
        chiller = Chiller("plant/chiller/1")
        chiller_setpoint = ChillerSetpoint("plant/chiller/1")
        cpa = Compressor("plant/compressor/1")
        heatpump = HeatPump("plant/heatpump/1")
    yield {"chiller": chiller, "chiller_setpoint": chiller_setpoint, "cpa": cpa, "heatpump": heatpump}


def collect(engine, plan) -> dict[str, list[dict]]:
    docs: dict[str, list[dict]] = {}
    engine(plan, lambda name, doc: docs.setdefault(name, []).append(doc))
    return docs


def test_scan_over_the_chiller_set_point_records_each_set_value_and_the_bath(engine, devices, plant):
    chiller = devices["chiller"]
    plant["chiller"].On()
    wait_for(lambda: plant["chiller"].state().name == "ON", what="chiller on")
    # The simulated bath (tau 10 min) stays within the 0.5 degC tolerance of these set points,
    # so each step completes after the 1 s hold time.
    targets = [19.8, 20.0, 20.2]
    try:
        docs = collect(engine, bp.list_scan([chiller], devices["chiller_setpoint"], targets))
    finally:
        plant["chiller"].write_attribute("Setpoint", 20.0)
    assert docs["stop"][0]["exit_status"] == "success"
    events = docs["event"]
    assert [round(e["data"]["chiller_setpoint"], 2) for e in events] == targets
    for event in events:
        assert abs(event["data"]["chiller-bath"] - event["data"]["chiller_setpoint"]) <= 0.5
    keys = docs["descriptor"][0]["data_keys"]
    assert keys["chiller-bath"]["units"] == "degC" and keys["chiller_setpoint"]["units"] == "degC"


def test_count_over_the_three_instruments_has_units(engine, devices):
    docs = collect(engine, bp.count([devices["cpa"], devices["chiller"], devices["heatpump"]], num=2))
    assert docs["stop"][0]["exit_status"] == "success"
    keys = docs["descriptor"][0]["data_keys"]
    assert keys["cpa-high_pressure"]["units"] == "bar"
    assert keys["cpa-helium_temperature"]["units"] == "degC"
    assert keys["chiller-bath"]["units"] == "degC"
    assert keys["heatpump-t_hs"]["units"] == "degC"
    assert keys["heatpump-water_pressure"]["units"] == "bar"
    assert len(docs["event"]) == 2
    data = docs["event"][0]["data"]
    assert data["cpa-high_pressure"] > 0 and data["heatpump-mode"] == "heat"
    assert data["heatpump-error"] == 0


def test_compressor_on_and_off_are_actions(engine, devices, plant):
    cpa = devices["cpa"]
    engine(bps.trigger(cpa.on, wait=True))
    wait_for(lambda: plant["compressor"].OperatingStateCode == 3, what="compressor running")
    engine(bps.trigger(cpa.off, wait=True))
    wait_for(lambda: plant["compressor"].OperatingStateCode == 0, what="compressor idle")
