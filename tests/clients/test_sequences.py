"""``plantds run cooldown|warmup`` as an operator runs it, against the simulated plant."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import tango

from plantds.sequences import SequenceError, wait_until
from plantds.server.testing import wait_for

COMPRESSOR, CHILLER = "plant/compressor/1", "plant/chiller/1"  # tests/clients/conftest.py


def plantds_run(tango_host: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "plantds.server.cli", "run", *args,
         "--compressor", COMPRESSOR, "--chiller", CHILLER],
        env=dict(os.environ, TANGO_HOST=tango_host), capture_output=True, text=True, timeout=240,
    )


@pytest.fixture
def chiller_at_20(plant):
    yield
    plant["chiller"].write_attribute("Setpoint", 20.0)


def test_cooldown_then_warmup_complete_with_progress_lines(tango_host, plant):
    cpa, chiller = plant["compressor"], plant["chiller"]
    wait_for(lambda: cpa.OperatingStateCode == 0, what="compressor idle at the start")

    cool = plantds_run(tango_host, "cooldown", "--timeout", "60")
    assert cool.returncode == 0, cool.stdout + cool.stderr
    lines = cool.stdout.splitlines()
    assert lines[0] == "cooldown: 6 steps"
    assert any("[3/6]" in line and "AtSetpoint" in line and "done in" in line for line in lines), cool.stdout
    assert lines[-1] == "cooldown complete"
    assert cpa.OperatingStateCode == 3 and cpa.state() == tango.DevState.ON
    assert chiller.AtSetpoint is True

    warm = plantds_run(tango_host, "warmup", "--timeout", "60")
    assert warm.returncode == 0, warm.stdout + warm.stderr
    assert warm.stdout.splitlines()[-1] == "warmup complete"
    assert cpa.OperatingStateCode == 0
    assert chiller.state() == tango.DevState.OFF


def test_cooldown_names_the_step_whose_condition_never_came(tango_host, plant, chiller_at_20):
    # 10 degC below a bath with a 10-minute time constant: not at set point within 3 s.
    result = plantds_run(tango_host, "cooldown", "--setpoint", "10", "--timeout", "3")
    assert result.returncode == 1
    message = result.stderr.strip()
    assert "Traceback" not in message and len(message.splitlines()) == 1, message
    assert message.startswith("cooldown failed: step 4 failed: ")
    assert f"{CHILLER}: the bath at its set point (AtSetpoint) did not come within 3 s" in message
    assert "last AtSetpoint read False" in message
    assert "[4/7]" in result.stdout and "[5/7]" not in result.stdout  # the compressor was not started
    assert plant["compressor"].OperatingStateCode == 0


def test_wait_until_reports_the_last_value(plant):
    with pytest.raises(SequenceError) as err:
        wait_until(plant["compressor"], "OperatingStateCode", lambda c: c == 99, 0.5, "state code 99")
    assert str(err.value) == (
        f"{COMPRESSOR}: state code 99 did not come within 0.5 s (last OperatingStateCode read 0)"
    )
