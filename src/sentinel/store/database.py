"""Which PostgreSQL Sentinel talks to, and opening connections to it.

``SENTINEL_DATABASE_URL`` names a server; without it Sentinel starts the embedded one (store/embedded.py) and stops
it when the :class:`Database` is closed. A URL that is wrong or unreachable is reported as a
:class:`~sentinel.errors.ConfigError` naming the setting, with the cause on one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sentinel.errors import ConfigError, DatabaseUnavailable
from sentinel.settings import ENV_PREFIX, Settings
from sentinel.store.datalock import DataLock
from sentinel.store.embedded import EmbeddedPostgres

SETTING = f"{ENV_PREFIX}DATABASE_URL"
CONNECT_TIMEOUT_S = 5


def one_line(exc: BaseException) -> str:
    """libpq errors span several lines; an operator wants one."""
    return " ".join(str(exc).split())


def describe(conninfo: str) -> str:
    """Where a conninfo points, without its password."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<unparsable URL>"
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    where = str(host) if str(host).startswith("/") else f"{host}:{port}"
    return f"{where}/{params.get('dbname') or params.get('user') or ''}"


def connect(conninfo: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """Open a connection in UTC with a bounded connect timeout; DatabaseUnavailable when it cannot."""
    try:
        return psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_S, options="-c timezone=UTC", **kwargs)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to {describe(conninfo)}: {one_line(exc)}") from exc


class Database:
    """A resolved database: its conninfo, and the embedded server when Sentinel started one."""

    def __init__(self, conninfo: str, embedded: EmbeddedPostgres | None = None) -> None:
        self.conninfo = conninfo
        self.embedded = embedded

    @classmethod
    @contextmanager
    def open(cls, settings: Settings, *, share: bool = False) -> Iterator[Database]:
        """Resolve the database from settings, check that it answers, and clean up on exit.

        The data folder is locked first (store/datalock.py). By default this process *owns* it (serve, demo): a
        second owner is refused with DataDirInUse before anything is touched. ``share=True`` is for short commands:
        they use the server of an owner that runs, and never stop it.
        """
        lock = DataLock(settings.data_dir, settings.display_tz)
        if share:
            alone = lock.acquire_shared()  # False: an owner runs; its server is used and never stopped here
        else:
            lock.acquire_owner()
            alone = True
        try:
            with cls._resolve(settings, adopt=alone) as db:
                yield db
        finally:
            lock.release()

    @classmethod
    @contextmanager
    def _resolve(cls, settings: Settings, *, adopt: bool) -> Iterator[Database]:
        if settings.database_url is None:
            server = EmbeddedPostgres(settings.embedded_pg_dir)
            conninfo = server.start(adopt=adopt)  # holding the folder: a server left running is an orphan
            try:
                yield cls(conninfo, server)
            finally:
                server.stop()  # only a server this object started
            return
        try:
            conninfo = make_conninfo(settings.database_url)
        except psycopg.ProgrammingError as exc:
            raise ConfigError(SETTING, f"not a valid PostgreSQL URL: {one_line(exc)}") from exc
        try:
            connect(conninfo).close()
        except DatabaseUnavailable as exc:
            raise ConfigError(SETTING, str(exc)) from exc
        yield cls(conninfo)

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return connect(self.conninfo, **kwargs)

    @property
    def dialect(self) -> str:
        """'timescale' or 'native' (after the migrations ran)."""
        with self.connect() as conn:
            row = conn.execute("SELECT value FROM sentinel_meta WHERE key = 'readings_dialect'").fetchone()
        return str(row[0]) if row else "unknown"
