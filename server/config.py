"""Site configuration in dsconfig JSON (db/*.json), loaded and compared with dsconfig's own tools."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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


# Archive entries (HDB++ AttributeList) need the fully qualified host of the site's database;
# the JSON files write it as this placeholder so one file serves every site.
TANGO_HOST_PLACEHOLDER = "${TANGO_HOST}"


def resolved(json_file: Path | str, tango_host: str, out_dir: Path | None = None) -> Path:
    """A copy of ``json_file`` with ``${TANGO_HOST}`` replaced (the file itself if it has none)."""
    json_file = Path(json_file)
    text = json_file.read_text()
    if TANGO_HOST_PLACEHOLDER not in text:
        return json_file
    out_dir = Path(out_dir or tempfile.mkdtemp(prefix="plantds-config-"))
    target = out_dir / json_file.name
    target.write_text(text.replace(TANGO_HOST_PLACEHOLDER, tango_host))
    return target


def load(json_file: Path | str, tango_host: str, dry_run: bool = False, update: bool = False) -> tuple[bool, str]:
    """Load a site file into the Tango DB (or, with ``dry_run``, say what would change)."""
    return json2tango(resolved(json_file, tango_host), tango_host, write=not dry_run, update=update)


def dump(tango_host: str, filters: list[str]) -> str:
    """The DB's current configuration as dsconfig JSON (tango2json), e.g. filters ['server:PlantDS/demo']."""
    env = dict(os.environ, TANGO_HOST=tango_host)
    proc = subprocess.run([_tool("tango2json"), *filters], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"tango2json failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    for action, text in (
        ("load", "write a dsconfig JSON file into the Tango DB (json2tango -w)"),
        ("diff", "show what loading the file would change, without writing"),
    ):
        p = sub.add_parser(action, help=text)
        p.add_argument("file", type=Path)
        p.add_argument("--update", action="store_true", help="only add/update, never remove properties")
    p = sub.add_parser("dump", help="print the DB's configuration as dsconfig JSON (tango2json)")
    p.add_argument("filters", nargs="*", default=["server:PlantDS/*"], help="e.g. server:PlantDS/demo")


def run(args) -> int:
    tango_host = os.environ.get("TANGO_HOST")
    if not tango_host:
        print("plantds config: set TANGO_HOST to the site's database (host:port)", file=sys.stderr)
        return 2
    if args.action == "dump":
        print(dump(tango_host, args.filters))
        return 0
    changed, report = load(args.file, tango_host, dry_run=args.action == "diff", update=args.update)
    if report:
        print(report)
    if args.action == "diff":
        print(f"{args.file}: {'changes pending (run: plantds config load ' + str(args.file) + ')' if changed else 'the DB already matches'}")
    else:
        print(f"{args.file}: {'written to ' + tango_host if changed else 'nothing to change'}")
    return 0
