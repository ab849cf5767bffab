"""``plantds gui`` rendered offscreen against the simulated plant: every panel is built from the
devices the DB holds, and its widgets show the devices' values, units and states."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"
for module in ("taurus", "PyQt5", "lxml", "taurus_pyqtgraph"):
    pytest.importorskip(module, reason="the [gui] extra (taurus, PyQt5, lxml, taurus_pyqtgraph) is not installed")

from plantds.gui import plant_devices, release_taurus  # noqa: E402
from plantds.gui.cli import process_until  # noqa: E402

PLANT = ["plant/compressor/1", "plant/chiller/1", "plant/heatpump/1"]


@pytest.fixture(scope="module")
def window(plant):
    import taurus
    from taurus.qt.qtgui.application import TaurusApplication

    from taurus.taurusstatecontroller import application

    from plantds.gui.window import PlantWindow

    taurus.Manager().changeDefaultPollingPeriod(1000)
    app = TaurusApplication.instance() or TaurusApplication([], cmd_line_parser=None)
    application.application_started()  # as exec_() would: Taurus's polling starts
    win = PlantWindow([d for d in plant_devices() if d[0] in PLANT])
    win.show()
    for panel in win.panels:
        win.tabs.setCurrentWidget(panel)
        assert process_until(app, panel.filled, 30), f"{panel.device}: {panel.value_texts()}"
    yield app, win
    win.close()
    release_taurus()  # while the plant still runs; see its docstring


def test_devices_are_found_by_class(plant):
    found = dict(plant_devices())
    assert {name: found[name] for name in PLANT} == {
        "plant/compressor/1": "CryomechCPA", "plant/chiller/1": "ColeParmerChiller", "plant/heatpump/1": "RotexHPSU",
    }


def test_panels_show_values_units_and_states(window, plant):
    app, win = window
    panels = {panel.device: panel for panel in win.panels}
    assert list(panels) == PLANT

    cpa = panels["plant/compressor/1"].value_texts()
    label, value, units = cpa["HighPressure"]
    assert label == "High pressure" and units == "bar"  # Taurus shows units through pint: degC is °C
    assert abs(float(value) - plant["compressor"].HighPressure) < 0.5
    assert cpa["HeliumTemperature"][2] == "°C"
    assert "WarningsText" in cpa and "AlarmsText" in cpa

    chiller = panels["plant/chiller/1"].value_texts()
    assert chiller["InternalTemperature"][2] == "°C"
    assert float(chiller["Setpoint"][1]) == pytest.approx(plant["chiller"].Setpoint, abs=0.05)
    # Texts arrive by change event: a panel filled while the device's first reading was still
    # INVALID shows the valid text once its event comes.
    chiller_panel = panels["plant/chiller/1"]
    assert process_until(
        app, lambda: chiller_panel.value_texts()["StatusFlagsText"][1] == plant["chiller"].StatusFlagsText, 10
    ), chiller_panel.value_texts()["StatusFlagsText"]

    heatpump = panels["plant/heatpump/1"].value_texts()
    assert heatpump["t_hs"][2] == "°C" and heatpump["water_pressure"][2] == "bar"
    heatpump_panel = panels["plant/heatpump/1"]
    assert process_until(
        app, lambda: heatpump_panel.value_texts()["mode_01_label"][1] == plant["heatpump"].mode_01_label, 10
    ), heatpump_panel.value_texts()["mode_01_label"]

    for device, panel in panels.items():
        status = plant[device.split("/")[1]].status().splitlines()[0]
        assert panel.status.text().splitlines()[0] == status
        state = plant[device.split("/")[1]].state()
        assert process_until(app, lambda: panel.led.getModelValueObj().rvalue == state, 10)
        assert [b.text() for b in panel.buttons] == ["On", "Off"]
        assert panel.trends, f"{device}: no trend"


def test_snapshot_writes_one_png_per_panel(tango_host, plant, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "plantds.server.cli", "gui", "--snapshot", str(tmp_path), "--timeout", "30"],
        env=dict(os.environ, TANGO_HOST=tango_host), capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert {f"{d.replace('/', '_')}.png" for d in PLANT} <= set(pngs)
    for name in pngs:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
