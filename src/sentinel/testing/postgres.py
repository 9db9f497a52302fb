"""A PostgreSQL for tests: a throwaway database per test on a real server.

Given an admin URL (CI points it at the machine's PostgreSQL) the databases are created there; without one an
embedded server is started in a fresh temporary folder and removed afterwards, so the test suite needs no server on
a user's fresh machine.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sentinel.store.embedded import EmbeddedPostgres


class PostgresForTests:
    """Creates and drops uniquely named databases on one server."""

    _counter = itertools.count()

    def __init__(self, admin_conninfo: str, embedded: EmbeddedPostgres | None = None) -> None:
        self.admin_conninfo = admin_conninfo
        self.embedded = embedded

    def create_database(self, prefix: str = "sentinel_test") -> str:
        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        with psycopg.connect(self.admin_conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return make_conninfo(self.admin_conninfo, dbname=name)

    def drop_database(self, conninfo: str) -> None:
        name = conninfo_to_dict(conninfo)["dbname"]
        with psycopg.connect(self.admin_conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name))))

    @contextmanager
    def database(self, prefix: str = "sentinel_test") -> Iterator[str]:
        conninfo = self.create_database(prefix)
        try:
            yield conninfo
        finally:
            self.drop_database(conninfo)


def scratch_dir(prefix: str) -> Path:
    """A temporary folder the embedded server's unprivileged user can reach (pytest's own is 0700 for root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@contextmanager
def postgres_for_tests(admin_url: str | None) -> Iterator[PostgresForTests]:
    """The machine's server when ``admin_url`` is given, else an embedded one that is stopped and removed after."""
    if admin_url:
        yield PostgresForTests(make_conninfo(admin_url))
        return
    workdir = scratch_dir("sentinel-pg-test-")
    server = EmbeddedPostgres(workdir / "pg")
    try:
        server.start()
        yield PostgresForTests(server.conninfo("postgres"), server)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
