"""A PostgreSQL for tests: a throwaway database per test on a real server.

Given an admin URL (CI points it at the machine's PostgreSQL) the databases are created there; without one an
embedded server is started in a fresh temporary folder and removed afterwards, so the test suite needs no server on
a user's fresh machine.

Two costs are kept off each test: a migrated database is a copy of a template migrated once per session
(``CREATE DATABASE ... TEMPLATE``, a file copy, instead of running every migration again), and a finished test's
database is dropped by a background thread (a drop waits for a server checkpoint) while the next test runs.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sentinel.store import migrations
from sentinel.store.embedded import EmbeddedPostgres


class PostgresForTests:
    """Creates and drops uniquely named databases on one server."""

    _counter = itertools.count()

    def __init__(self, admin_conninfo: str, embedded: EmbeddedPostgres | None = None) -> None:
        self.admin_conninfo = admin_conninfo
        self.embedded = embedded
        self._template: str | None = None
        self._template_lock = threading.Lock()
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-test-db")
        self._drops: list[Future[None]] = []

    def create_database(self, prefix: str = "sentinel_test", *, template: str | None = None) -> str:
        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
        with psycopg.connect(self.admin_conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(create)
        return make_conninfo(self.admin_conninfo, dbname=name)

    def drop_database(self, conninfo: str) -> None:
        name = conninfo_to_dict(conninfo)["dbname"]
        with psycopg.connect(self.admin_conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name))))

    def drop_later(self, conninfo: str) -> None:
        """Drop the database on the background thread; :meth:`close` waits for every drop."""
        self._drops.append(self._dropper.submit(self.drop_database, conninfo))

    def migrated_template(self) -> str:
        """The name of a database with every migration applied, made on first use; only ever copied."""
        with self._template_lock:
            if self._template is None:
                conninfo = self.create_database("sentinel_template")
                migrations.upgrade(conninfo)
                self._template = str(conninfo_to_dict(conninfo)["dbname"])
            return self._template

    @contextmanager
    def database(self, prefix: str = "sentinel_test", *, migrated: bool = False) -> Iterator[str]:
        """A new database, empty or (``migrated``) with every migration applied; dropped after."""
        template = self.migrated_template() if migrated else None
        conninfo = self.create_database(prefix, template=template)
        try:
            yield conninfo
        finally:
            self.drop_later(conninfo)

    def close(self) -> None:
        """Wait for the pending drops, then drop the template."""
        self._dropper.shutdown(wait=True)
        for drop in self._drops:
            drop.result()
        if self._template is not None:
            self.drop_database(make_conninfo(self.admin_conninfo, dbname=self._template))
            self._template = None


def scratch_dir(prefix: str) -> Path:
    """A temporary folder the embedded server's unprivileged user can reach (pytest's own is 0700 for root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@contextmanager
def postgres_for_tests(admin_url: str | None) -> Iterator[PostgresForTests]:
    """The machine's server when ``admin_url`` is given, else an embedded one that is stopped and removed after."""
    if admin_url:
        pg = PostgresForTests(make_conninfo(admin_url))
        try:
            yield pg
        finally:
            pg.close()
        return
    workdir = scratch_dir("sentinel-pg-test-")
    server = EmbeddedPostgres(workdir / "pg")
    try:
        server.start()
        pg = PostgresForTests(server.conninfo("postgres"), server)
        try:
            yield pg
        finally:
            pg.close()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
