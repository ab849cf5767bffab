"""Site configuration in dsconfig JSON (db/*.json), loaded and compared with dsconfig's own tools."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .processes import _tool

# json2tango's exit codes (dsconfig): 0 nothing to change, 1 error, 2 written, 3 dry run with changes.
JSON2TANGO_WROTE = 2
JSON2TANGO_PENDING = 3

DB_DIR = Path(__file__).resolve().parent.parent / "db"


def bundled(name: str) -> Path:
    """A configuration file shipped in ``db/`` (e.g. ``demo.json``)."""
    return DB_DIR / name


def json2tango(json_file: Path | str, tango_host: str, write: bool, update: bool = False) -> tuple[bool, str]:
    """Run json2tango; return (changes were found, its report). Raise on a dsconfig error."""
    args = [_tool("json2tango"), "--no-colors"]
    if write:
        args.append("--write")
    if update:
        args.append("--update")
    args.append(str(json_file))
    env = dict(os.environ, TANGO_HOST=tango_host)
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    report = (proc.stdout + proc.stderr).strip()
    if proc.returncode not in (0, JSON2TANGO_WROTE, JSON2TANGO_PENDING):
        raise RuntimeError(f"json2tango failed on {json_file} (exit {proc.returncode}):\n{report}")
    return proc.returncode != 0, report
