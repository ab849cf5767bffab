"""The project's own HDB++ archiver (deploy/hdbpp.sh) as a context manager, for ``plantds demo
--archive`` and the integration tests: build it (once, cached), start it in a Tango DB, stop it."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Iterator

HDBPP_SH = Path(__file__).resolve().parent.parent / "deploy" / "hdbpp.sh"


def hdbpp_sh(command: str, state: Path, tango_host: str, quiet: bool = False) -> str:
    """Run ``deploy/hdbpp.sh COMMAND``; its progress goes to the terminal unless ``quiet``.
    Returns its standard output; raises RuntimeError with its messages when it fails."""
    if not HDBPP_SH.exists():
        raise RuntimeError(f"{HDBPP_SH} not found: the archiver is built from a plantds source checkout")
    env = dict(os.environ, PLANTDS_STATE=str(state), TANGO_HOST=tango_host)
    # start's output is read (device names, archive DB); the others' progress is streamed
    capture = quiet or command == "start"
    proc = subprocess.run(["bash", str(HDBPP_SH), *command.split()], env=env, text=True,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if quiet else None)
    if proc.returncode != 0:
        raise RuntimeError(f"deploy/hdbpp.sh {command} failed (exit {proc.returncode})"
                           f"{': ' + (proc.stdout or '') + (proc.stderr or '') if quiet else ''}".strip())
    return proc.stdout or ""


@contextlib.contextmanager
def running_archiver(state: Path, tango_host: str, quiet: bool = False, purge: bool = False) -> Iterator[dict[str, str]]:
    """Build (when not cached), start and finally stop HDB++ with its state in ``state``/hdbpp
    (kept for the next start unless ``purge``); yields what start printed: HDBPP_ES_DEVICE,
    HDBPP_CM_DEVICE, HDBPP_DB."""
    for step in ("install", "build"):
        hdbpp_sh(step, state, tango_host, quiet)
    try:
        started = hdbpp_sh("start", state, tango_host, quiet)
        yield dict(line.split("=", 1) for line in started.splitlines() if line.startswith("HDBPP_"))
    finally:
        hdbpp_sh("stop --purge" if purge else "stop", state, tango_host, quiet=True)
