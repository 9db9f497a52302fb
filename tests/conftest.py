"""Shared fixtures: real PostgreSQL databases, created per test and dropped after (a migrated one is a copy of a
template migrated once per session: see sentinel.testing.postgres).

SENTINEL_TEST_DATABASE_URL points the suite at an existing server (CI uses the machine's PostgreSQL); without it an
embedded PostgreSQL is started for the session, so the suite passes on a machine with no servers. MQTT tests get a
private Mosquitto each and skip where the binary is missing. A folder of fitted anomaly models (probe_models) is here
because both tests/engine and tests/anomaly use it.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from sentinel.store.embedded import EmbeddedPostgres
from sentinel.testing.broker import BrokerUnavailable, PrivateMosquitto
from sentinel.testing.postgres import PostgresForTests, postgres_for_tests, scratch_dir
from tests.examples import DEV, FULL

# Property tests at full strength in CI (`--hypothesis-profile=ci` in .ci/run), a third of it by default
# (tests/examples.py).
settings.register_profile("ci", max_examples=FULL)
settings.register_profile("dev", max_examples=DEV)
settings.load_profile("dev")  # --hypothesis-profile, when given, is loaded after this


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist workers start with COLUMNS=80 and LINES=24 in their environment. A rich Console created at import
    # (the command modules' `console`) fixes its width from COLUMNS then, so which test first imported a command
    # module decided whether a later COLUMNS=300 counted: CLI tables wrapped at 80 columns in some runs only. Without
    # them, as in a plain single-process run, the width is read when a table is printed.
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `timescale` tests share the session's TimescaleDB engine: one worker runs them all (one engine, not one
    per worker)."""
    for item in items:
        if item.get_closest_marker("timescale") is not None:
            item.add_marker(pytest.mark.xdist_group("timescale"))


@pytest.fixture(autouse=True)
def _no_log_handler_left_on_a_closed_stream() -> Iterator[None]:
    """A command run in-process (typer's CliRunner) installs Sentinel's log handler on the runner's stderr, which is
    closed when the command returns: take the handler off after the test, or a later test's log record (another
    thread's, in whichever test runs next on that worker) fails with "I/O operation on closed file"."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "sentinel":
            root.removeHandler(handler)


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresForTests]:
    with postgres_for_tests(os.environ.get("SENTINEL_TEST_DATABASE_URL")) as server:
        yield server


@pytest.fixture
def mosquitto() -> Iterator[PrivateMosquitto]:
    """A private Mosquitto on a free port (skips, saying why, where the binary is missing)."""
    try:
        broker = PrivateMosquitto()
    except BrokerUnavailable as exc:
        pytest.skip(str(exc))
    try:
        broker.start()
    except BrokerUnavailable as exc:
        broker.close()
        pytest.skip(str(exc))
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def db_url(pg: PostgresForTests) -> Iterator[str]:
    """A fresh, empty database."""
    with pg.database() as conninfo:
        yield conninfo


@pytest.fixture
def migrated_db(pg: PostgresForTests) -> Iterator[str]:
    """A fresh database with every migration applied (a copy of the session's migrated template)."""
    with pg.database(migrated=True) as conninfo:
        yield conninfo


@pytest.fixture
def own_postgres() -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A PostgreSQL this test may stop and start: the embedded server in its own short-pathed folder."""
    folder = scratch_dir("sntl-")
    server = EmbeddedPostgres(folder / "pg")
    conninfo = server.start()
    try:
        yield server, conninfo
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def probe_models(tmp_path: Path) -> Path:
    """A models folder holding the test pack's three anomaly models (tests/engine/packs.py), fitted on normal probe
    data: the engine's model tests and the anomaly versions tests both start from it."""
    from tests.engine.packs import write_probe_models  # only the tests that ask for it pay for fitting's imports

    folder = tmp_path / "models"
    folder.mkdir()
    write_probe_models(folder)
    return folder
