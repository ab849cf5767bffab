"""What the clients rely on from the devices: scalar texts of the condition lists, and the heat
pump's error code in ALARM quality when it is not 0 (its limit in the DB, as db/site-template.json, and so the demo, sets it)."""

from __future__ import annotations

from tango import AttrQuality, DevState

from plantds.server.testing import wait_for


def test_compressor_conditions_as_text(plant, sims):
    cpa = plant["compressor"]
    assert cpa.WarningsText == "" and cpa.AlarmsText == ""
    sims["cpa"].set_warnings(0x1)
    try:
        wait_for(lambda: cpa.WarningsText != "", what="WarningsText set")
        assert cpa.WarningsText == ", ".join(cpa.Warnings)
    finally:
        sims["cpa"].clear_faults()
    wait_for(lambda: cpa.WarningsText == "", what="WarningsText cleared")


def test_chiller_status_flags_as_text(plant):
    chiller = plant["chiller"]
    wait_for(lambda: chiller.StatusFlagsText != "", what="chiller flags")
    assert chiller.StatusFlagsText == ", ".join(chiller.StatusFlags)


def test_heat_pump_error_code_alarm_quality(plant, sims):
    heatpump = plant["heatpump"]
    wait_for(lambda: heatpump.read_attribute("error").quality == AttrQuality.ATTR_VALID, what="error 0 VALID")
    sims["heatpump"].set_error(42)
    try:
        wait_for(lambda: heatpump.read_attribute("error").quality == AttrQuality.ATTR_ALARM,
                 what="error 42 in ALARM quality")
    finally:
        sims["heatpump"].set_error(0)
    # State recovers by itself, without a client reading error again
    wait_for(lambda: heatpump.state() == DevState.ON, what="heat pump ON again")
    assert heatpump.read_attribute("error").quality == AttrQuality.ATTR_VALID
