"""Fixtures for a real TimescaleDB engine: PGlite 0.3.14 with TimescaleDB 2.23 (WASM), served over TCP.

The engine serves ONE connection at a time (see FINDINGS.md beside this file): close every connection before
code under test opens its own, and never keep one open across tests. Tests skip with a message when Node.js
or npm is missing; the npm packages are installed on first use (``npm ci`` into ``pglite/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.testing.pglite import missing_node_tools, pglite_timescale

PGLITE_PACKAGE_DIR = Path(__file__).resolve().parent / "pglite"


def _skip_without_node() -> None:
    reason = missing_node_tools()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def timescale_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Conninfo URL of one TimescaleDB engine shared by the whole session (in memory; gone afterwards).

    Shared means shared: create your objects under your own schema or names, or use ``fresh_timescale_url``.
    """
    _skip_without_node()
    with pglite_timescale(PGLITE_PACKAGE_DIR, log_dir=tmp_path_factory.mktemp("pglite-session")) as url:
        yield url


@pytest.fixture
def fresh_timescale_url(tmp_path: Path) -> Iterator[str]:
    """Conninfo URL of a new, empty TimescaleDB engine for one test (about 1.5 s to start when installed).

    A second connection opened while one is open fails after 2 s with SQLSTATE 53300 instead of waiting.
    """
    _skip_without_node()
    with pglite_timescale(PGLITE_PACKAGE_DIR, log_dir=tmp_path / "pglite", queue_timeout_s=2.0) as url:
        yield url
