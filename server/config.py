"""Site configuration in dsconfig JSON (db/*.json), loaded and compared with dsconfig's own tools."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .processes import console_script

# json2tango's exit codes (dsconfig): 0 nothing to change, 1 error, 2 written, 3 dry run with changes.
JSON2TANGO_WROTE = 2
JSON2TANGO_PENDING = 3
# How json2tango's report names the file holding the DB's previous state.
BACKUP_LINE = "The previous DB data was saved to "

DB_DIR = Path(__file__).resolve().parent.parent / "db"


def bundled(name: str) -> Path:
    """A configuration file shipped in ``db/`` (e.g. ``site-template.json``)."""
    return DB_DIR / name


def json2tango(
    json_file: Path | str, tango_host: str, write: bool, update: bool = False, backup_dir: Path | None = None
) -> tuple[bool, str]:
    """Run json2tango; return (changes were found, its report). Raise on a dsconfig error.

    json2tango saves the DB's previous state to a file in TMPDIR each time it writes. That file
    goes to ``backup_dir`` when given (the caller keeps it); otherwise to a temporary folder
    removed afterwards, so repeated loads do not fill the host's /tmp.
    """
    args = [console_script("json2tango"), "--no-colors", "--dbcalls"]
    if write:
        args.append("--write")
    if update:
        args.append("--update")
    args += ["--", str(json_file)]  # never an option, whatever the file is called
    if backup_dir is not None:
        # tempfile ignores a TMPDIR that does not exist and falls back to /tmp.
        Path(backup_dir).mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        tmpdir = backup_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="plantds-json2tango-"))
        env = dict(os.environ, TANGO_HOST=tango_host, TMPDIR=str(tmpdir))
        proc = subprocess.run(args, env=env, capture_output=True, text=True)
    report = (proc.stdout + proc.stderr).strip()
    if backup_dir is None:
        # The saved file is gone with its folder: do not point the operator at it.
        report = "\n".join(ln for ln in report.splitlines() if not ln.startswith(BACKUP_LINE)).strip()
    if proc.returncode not in (0, JSON2TANGO_WROTE, JSON2TANGO_PENDING):
        raise RuntimeError(f"json2tango failed on {json_file} (exit {proc.returncode}):\n{report}")
    calls, report = _split_db_calls(report)
    if proc.returncode == JSON2TANGO_PENDING and calls and all(c == BOGUS_ALIAS_CALL for c in calls):
        return False, ""
    return proc.returncode != 0, report


# The C++ DataBaseds stores "no alias" as '' and dsconfig 1.9 reads that as an alias of the
# last device in the table; when that device is in the file, it plans to delete alias ''.
BOGUS_ALIAS_CALL = "delete_device_alias ('',)"


def _split_db_calls(report: str) -> tuple[list[str], str]:
    """json2tango --dbcalls output → (the DB calls it plans or made, the report without them)."""
    lines = report.splitlines()
    if "Tango database calls:" not in lines:
        return [], report
    start = lines.index("Tango database calls:")
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip() or lines[i].startswith("Summary")), len(lines))
    return [ln.strip() for ln in lines[start + 1:end]], "\n".join(lines[:start] + lines[end:]).strip()


# Archive entries (HDB++ AttributeList) need the fully qualified host of the site's database;
# the JSON files write it as this placeholder so one file serves every site.
TANGO_HOST_PLACEHOLDER = "${TANGO_HOST}"


class ConfigFileError(ValueError):
    """The file cannot be loaded: missing, unreadable or not JSON (one line, for the operator)."""


def resolved(json_file: Path | str, tango_host: str, out_dir: Path) -> Path:
    """A copy of ``json_file`` in ``out_dir`` with ``${TANGO_HOST}`` replaced (the file itself if
    it has none), as an absolute path: a file named ``-w`` must never reach json2tango as its
    ``--write`` option. ConfigFileError unless the file is readable JSON."""
    json_file = Path(json_file).absolute()
    try:
        text = json_file.read_text()
        json.loads(text)
    except OSError as exc:
        raise ConfigFileError(f"cannot read {json_file}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigFileError(f"{json_file} is not a dsconfig JSON file: {exc}") from None
    if TANGO_HOST_PLACEHOLDER not in text:
        return json_file
    target = Path(out_dir) / json_file.name
    target.write_text(text.replace(TANGO_HOST_PLACEHOLDER, tango_host))
    return target


def load(
    json_file: Path | str,
    tango_host: str,
    dry_run: bool = False,
    update: bool = False,
    backup_dir: Path | None = None,
) -> tuple[bool, str]:
    """Load a site file into the Tango DB (or, with ``dry_run``, say what would change).

    ``backup_dir`` keeps json2tango's copy of the DB's previous state (see :func:`json2tango`);
    the resolved copy of ``json_file`` is removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="plantds-config-") as work:
        return json2tango(
            resolved(json_file, tango_host, out_dir=Path(work)), tango_host,
            write=not dry_run, update=update, backup_dir=backup_dir,
        )


def dump(tango_host: str, filters: list[str]) -> str:
    """The DB's current configuration as dsconfig JSON (tango2json), e.g. filters ['server:PlantDS/demo']."""
    env = dict(os.environ, TANGO_HOST=tango_host)
    proc = subprocess.run([console_script("tango2json"), *filters], env=env, capture_output=True, text=True)
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
        if action == "load":
            p.add_argument(
                "--backup-dir", type=Path, default=None,
                help="keep json2tango's copy of the DB's previous state in this folder (default: not kept)",
            )
        else:
            p.set_defaults(backup_dir=None)
    p = sub.add_parser("dump", help="print the DB's configuration as dsconfig JSON (tango2json)")
    p.add_argument("filters", nargs="*", default=["server:PlantDS/*"], help="e.g. server:PlantDS/demo")


def run(args) -> int:
    tango_host = os.environ.get("TANGO_HOST")
    if not tango_host:
        print("plantds config: set TANGO_HOST to the site's database (host:port)", file=sys.stderr)
        return 2
    if args.action == "dump":
        try:
            print(dump(tango_host, args.filters))
        except RuntimeError as exc:
            print(f"plantds config: {exc}", file=sys.stderr)
            return 1
        return 0
    try:
        changed, report = load(
            args.file, tango_host, dry_run=args.action == "diff", update=args.update,
            backup_dir=args.backup_dir,
        )
    except (ConfigFileError, RuntimeError) as exc:
        print(f"plantds config: {exc}", file=sys.stderr)
        return 1
    if report:
        print(report)
    if args.action == "diff":
        print(f"{args.file}: {'changes pending (run: plantds config load ' + str(args.file) + ')' if changed else 'the DB already matches'}")
    else:
        print(f"{args.file}: {'written to ' + tango_host if changed else 'nothing to change'}")
    return 0
