"""Taranta's backend, TangoGQL (from PyPI), on the real Tango DB reads the demo plant as Taranta
does: GraphQL queries over HTTP for values, units, quality and State, a mutation to run a
command, and the websocket subscription (graphql-ws) that feeds a dashboard's widgets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
import tango
from websockets.sync.client import connect

from plantds.server.processes import stop_process
from plantds.server.testing import free_ports, wait_for

pytestmark = pytest.mark.integration

COMPRESSOR = "plant/compressor/1"


class TangoGQL:
    def __init__(self, port: int):
        self.port = port

    def query(self, text: str) -> dict:
        """POST a GraphQL document to /db; the ``data`` of the answer (errors fail the test)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/db",
            data=json.dumps({"query": text}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            answer = json.loads(reply.read())
        assert not answer.get("errors"), answer["errors"]
        return answer["data"]

    def socket(self):
        return connect(f"ws://127.0.0.1:{self.port}/socket", subprotocols=["graphql-ws"], open_timeout=60)


@pytest.fixture(scope="module")
def tangogql(demo_plant, tmp_path_factory) -> Iterator[TangoGQL]:
    """``uvicorn tangogql.main:app`` on loopback, as a facility runs it, minus the log-in."""
    workdir = tmp_path_factory.mktemp("tangogql")  # it would read a config.json from its cwd
    port = free_ports(1)
    env = {**os.environ, "TANGO_HOST": demo_plant.tango_host, "TANGOGQL_NO_AUTH": "true"}
    with open(workdir / "uvicorn.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tangogql.main:app", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
        )
    gql = TangoGQL(port)

    def answers() -> bool:
        assert proc.poll() is None, (workdir / "uvicorn.log").read_text()
        try:
            return gql.query("{ tangoHost }")["tangoHost"] == demo_plant.tango_host
        except OSError:
            return False

    try:
        wait_for(answers, timeout=60, what="TangoGQL answering")
        yield gql
    finally:
        stop_process(proc)


def test_devices_read_through_graphql_as_taranta_does(demo_plant, tangogql):
    for name, cls in demo_plant.devices.items():
        device = tangogql.query(
            f'{{ device(name: "{name}") {{ name state exported deviceClass '
            f'attributes(pattern: "*") {{ name unit label quality value }} }} }}'
        )["device"]
        proxy = demo_plant.proxy(name)
        assert (device["exported"], device["deviceClass"]) == (True, cls)
        assert device["state"] == str(proxy.state())
        attributes = {a["name"].lower(): a for a in device["attributes"]}
        assert set(attributes) == {a.lower() for a in proxy.get_attribute_list()}
        for attribute in attributes.values():
            config = proxy.get_attribute_config(attribute["name"])
            assert (attribute["unit"], attribute["label"]) == (config.unit, config.label)

    pressures = tangogql.query(
        f'{{ attributes(fullNames: ["{COMPRESSOR}/HighPressure", "{COMPRESSOR}/OperatingState"]) '
        "{ name value quality unit enumLabels } }"
    )["attributes"]
    high, operating = pressures
    assert (high["unit"], high["quality"]) == ("bar", "ATTR_VALID")
    assert high["value"] == pytest.approx(demo_plant.proxy(COMPRESSOR).HighPressure, abs=0.5)
    assert operating["value"] == "IdlingReadyToStart" and not operating["enumLabels"]  # no DevEnum


def test_command_through_a_mutation_shows_in_the_dashboard_subscription(tangogql, compressor):
    cpa, _ = compressor
    with tangogql.socket() as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=60))["type"] == "connection_ack"
        ws.send(json.dumps({"type": "start", "id": "1", "payload": {"query": (
            f'subscription {{ attributes(fullNames: ["{COMPRESSOR}/State"]) {{ device attribute value quality }} }}'
        )}}))

        def states_until(wanted: str, timeout: float = 60.0) -> list[str]:
            seen, deadline = [], time.monotonic() + timeout
            while wanted not in seen:
                frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                assert frame["type"] == "data", frame
                seen.append(frame["payload"]["data"]["attributes"]["value"])
            return seen

        assert states_until("OFF")[0] == "OFF"
        started = tangogql.query(f'mutation {{ executeCommand(device: "{COMPRESSOR}", command: "On") {{ ok message }} }}')
        assert started["executeCommand"] == {"ok": True, "message": None}
        states_until("ON")
        assert cpa.state() == tango.DevState.ON

        stopped = tangogql.query(f'mutation {{ executeCommand(device: "{COMPRESSOR}", command: "Off") {{ ok message }} }}')
        assert stopped["executeCommand"] == {"ok": True, "message": None}
        states_until("OFF")
        ws.send(json.dumps({"type": "stop", "id": "1"}))
