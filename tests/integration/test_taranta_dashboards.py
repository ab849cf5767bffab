"""The Taranta dashboards in deploy/taranta/ name only devices, attributes and commands the demo
plant has (asked of the running devices), and are well-formed .wj files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from plantds.server import demo

DASHBOARDS = sorted((Path(__file__).resolve().parents[2] / "deploy" / "taranta").glob("*.wj"))
DEMO_DEVICES = demo.demo_devices()
POSITION = ("x", "y", "width", "height")


def widgets(items: list[dict]) -> Iterator[dict]:
    for widget in items:
        yield widget
        yield from widgets(widget.get("innerWidgets", []))


def device_name(name: str) -> str:
    """A widget's device without the ``<tangoDB>://`` prefix Taranta 2 may save with it."""
    return name.split("://", 1)[-1].lower()


def references(dashboard: Path) -> dict[str, dict[str, set[str]]]:
    """device → {"attributes": {...}, "commands": {...}} named by the dashboard's widgets."""
    named: dict[str, dict[str, set[str]]] = {}

    def visit(value) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("device"), str):
                entry = named.setdefault(device_name(value["device"]), {"attributes": set(), "commands": set()})
                if isinstance(value.get("attribute"), str):
                    entry["attributes"].add(value["attribute"].lower())
                if isinstance(value.get("command"), str):
                    entry["commands"].add(value["command"].lower())
            for inner in value.values():
                visit(inner)
        elif isinstance(value, list):
            for inner in value:
                visit(inner)

    for widget in widgets(json.loads(dashboard.read_text())["widget"]):
        visit(widget["inputs"])
    return named


DEVICE_CASES = [
    pytest.param(dashboard, device, id=f"{dashboard.stem}:{device}")
    for dashboard in DASHBOARDS
    for device in sorted(references(dashboard))
]


def test_there_is_a_plant_overview():
    assert "plant-overview" in [d.stem for d in DASHBOARDS]


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=[d.stem for d in DASHBOARDS])
def test_dashboard_is_a_well_formed_wj_file(dashboard):
    content = json.loads(dashboard.read_text())
    assert content["name"] and isinstance(content["widget"], list)
    ids = []
    for widget in widgets(content["widget"]):
        assert widget["type"] and isinstance(widget["inputs"], dict), widget
        assert all(isinstance(widget[k], (int, float)) and widget[k] >= 0 for k in POSITION), widget
        ids.append(widget["id"])
        for inner in widget.get("innerWidgets", []):
            # a box's widgets lie inside it
            assert widget["x"] <= inner["x"] and inner["x"] + inner["width"] <= widget["x"] + widget["width"]
            assert widget["y"] <= inner["y"] and inner["y"] + inner["height"] <= widget["y"] + widget["height"]
    assert len(ids) == len(set(ids)), "widget ids repeat"
    states = [w for w in widgets(content["widget"]) if w["type"] == "DEVICE_STATUS"]
    assert {device_name(w["inputs"]["device"]) for w in states} == set(references(dashboard))


@pytest.mark.integration
@pytest.mark.parametrize(("dashboard", "device"), DEVICE_CASES)
def test_dashboard_names_what_the_device_has(demo_plant, dashboard, device):
    assert device in DEMO_DEVICES, f"{dashboard.name} names {device}, which the demo plant does not have"
    named = references(dashboard)[device]
    proxy = demo_plant.proxy(device)
    missing_attributes = named["attributes"] - {a.lower() for a in proxy.get_attribute_list()}
    missing_commands = named["commands"] - {c.cmd_name.lower() for c in proxy.command_list_query()}
    assert not missing_attributes, f"{dashboard.name}: {device} has no attribute {sorted(missing_attributes)}"
    assert not missing_commands, f"{dashboard.name}: {device} has no command {sorted(missing_commands)}"
