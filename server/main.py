"""``PlantDS <instance>``: the one Tango server hosting every instrument class."""

from __future__ import annotations

import logging
import sys

import tango
from tango.server import run


def device_classes() -> list[type]:
    """Every instrument class the server hosts (imported here so ``plantds`` CLI stays light)."""
    from ..devices.coleparmer.device import ColeParmerChiller
    from ..devices.cryomech.device import CryomechCPA
    from ..devices.rotex.device import RotexHPSU

    return [CryomechCPA, ColeParmerChiller, RotexHPSU]


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1].startswith("-"):
        print("usage: PlantDS <instance> [-v4] [-ORBendPoint giop:tcp:127.0.0.1:0]", file=sys.stderr)
        raise SystemExit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pymodbus logs every timeout with frame dumps; the worker reports losses once, in words.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    # Tango reads the server name from argv[0]; keep it "PlantDS" whatever the launcher was.
    # raises=True: a server that cannot start at all exits non-zero, so systemd's
    # Restart=on-failure restarts it; one device's configuration error never gets here (it is
    # that device's FAULT).
    try:
        run(device_classes(), args=["PlantDS", *argv[1:]], raises=True)
    except tango.DevFailed as exc:
        print(f"PlantDS {argv[1]}: cannot start: {exc.args[0].desc.strip()}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
