"""Options of the whole test tree.

Registered here, at the top of ``tests/``, so that they exist whichever folder pytest is given
(``pytest``, ``pytest tests/integration``, ``pytest tests/unit``): pytest reads only the
conftest files on the path to the folders it is asked to collect before parsing options.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--real-db",
        action="store_true",
        default=False,
        help="run tests/integration against a real MariaDB + C++ DataBaseds (deploy/tangodb.sh)",
    )


@pytest.fixture(scope="session")
def tango_host(session_pytango_db) -> str:
    """TANGO_HOST of the session's PyDatabaseds (pytango-db's own fixture starts it)."""
    os.environ["TANGO_HOST"] = session_pytango_db
    return session_pytango_db


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("plantds-logs")
