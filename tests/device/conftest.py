"""Device tests: a real Tango DB (pytango-db's PyDatabaseds) and a real PlantDS server process.

The simulators run in this test process on real loopback sockets; the server under test is a
separate ``PlantDS`` process that reaches them exactly as it would reach the instruments.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tango_host(session_pytango_db) -> str:
    """TANGO_HOST of the session's PyDatabaseds (pytango-db's own fixture starts it)."""
    os.environ["TANGO_HOST"] = session_pytango_db
    return session_pytango_db


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("plantds-logs")
