"""Operator mistakes at the command line end in one line on stderr, never a traceback (issue 9).

(`plantds hpsu -d` on a device that is not a heat pump: tests/device/test_rotex_device.py;
`plantds config` with missing or non-JSON files: test_config.py.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

PLANTDS = [sys.executable, "-m", "plantds.server.cli"]


def plantds(*args: str, tango_host: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TANGO_HOST=tango_host)
    return subprocess.run([*PLANTDS, *args], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess, text: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and text in proc.stderr, proc.stderr


def test_demo_refuses_a_tango_host_that_is_not_loopback(tmp_path):
    proc = plantds("demo", "--state-dir", str(tmp_path), tango_host="tango.example.org:10000",
                   tmp_path=tmp_path)
    one_line_error(proc, "runs on loopback only")


def test_demo_with_its_database_port_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = plantds("demo", "--state-dir", str(tmp_path), tango_host=f"127.0.0.1:{port}",
                       tmp_path=tmp_path)
    one_line_error(proc, f"{port}")
    assert "already in use" in proc.stderr


def test_a_closed_pipe_is_not_an_error(tmp_path):
    """`plantds hpsu --list | head` printed a BrokenPipeError traceback."""
    proc = subprocess.Popen([*PLANTDS, "hpsu", "--list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # what head does after its lines; here before the first write, always
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0 and stderr == ""
