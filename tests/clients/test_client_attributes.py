"""What the clients rely on from the devices: scalar texts of the condition lists."""

from __future__ import annotations

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
