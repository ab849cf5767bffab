"""Options of the whole test tree.

Registered here, at the top of ``tests/``, so that they exist whichever folder pytest is given
(``pytest``, ``pytest tests/integration``, ``pytest tests/unit``): pytest reads only the
conftest files on the path to the folders it is asked to collect before parsing options.
"""

from __future__ import annotations


def pytest_addoption(parser):
    parser.addoption(
        "--real-db",
        action="store_true",
        default=False,
        help="run tests/integration against a real MariaDB + C++ DataBaseds (deploy/tangodb.sh)",
    )
