"""Ordered, versioned schema migrations, applied by ``sentinel db upgrade``.

The migrations are the files in ``versions/`` (SQL, or Python where a step must choose between the TimescaleDB and
the native readings dialect, whose SQL lives in ``dialects/``). yoyo-migrations applies them in dependency order
under a lock and records each in ``_yoyo_migration``; a second upgrade applies nothing.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict

from sentinel.errors import DatabaseUnavailable, MigrationError

VERSIONS_DIR = Path(__file__).resolve().parent / "versions"

# yoyo logs every statement at INFO; ours is the summary `sentinel db upgrade` prints.
logging.getLogger("yoyo").setLevel(logging.WARNING)


def _yoyo_uri(conninfo: str) -> str:
    """yoyo takes a URI; pass every libpq parameter through its query string, which it hands to psycopg."""
    params = {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    return "postgresql+psycopg:///?" + urlencode(params)


def _backend(conninfo: str) -> Any:
    from yoyo import get_backend

    try:
        backend = get_backend(_yoyo_uri(conninfo))
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {_one_line(exc)}") from exc
    # yoyo applies each migration on a second connection (backend.copy()). One connection is enough here, and it is
    # all that some servers allow (the single-session TimescaleDB engine the tests use), so reuse this one.
    backend.copy = lambda: contextlib.nullcontext(backend)
    return backend


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _known() -> Any:
    from yoyo import read_migrations

    return read_migrations(str(VERSIONS_DIR))


def known_versions() -> list[str]:
    """Ids of every migration this code ships, in order."""
    return [m.id for m in _known()]


def applied_versions(conninfo: str) -> list[str]:
    """Ids of the migrations recorded as applied in the database (empty for a fresh database)."""
    backend = _backend(conninfo)
    try:
        return sorted(m.id for m in _known() if backend.is_applied(m))
    finally:
        backend.connection.close()


def upgrade(conninfo: str) -> list[str]:
    """Apply every pending migration; return the ids applied (empty when the schema is current)."""
    from yoyo.exceptions import BadMigration, LockTimeout, MigrationConflict

    backend = _backend(conninfo)
    try:
        migrations = _known()
        with backend.lock(timeout=60):
            _refuse_unknown_applied(backend, {m.id for m in migrations})
            pending = backend.to_apply(migrations)
            ids = [m.id for m in pending]
            backend.apply_migrations(pending)
        return ids
    except LockTimeout as exc:
        raise MigrationError("another `sentinel db upgrade` holds the migration lock; try again") from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"the database went away during the upgrade: {_one_line(exc)}") from exc
    except (psycopg.Error, BadMigration, MigrationConflict) as exc:
        raise MigrationError(f"migration failed: {_one_line(exc)}") from exc
    finally:
        backend.connection.close()


def _refuse_unknown_applied(backend: Any, known: set[str]) -> None:
    backend.ensure_internal_schema_updated()
    table = backend.quote_identifier(backend.migration_table)
    rows = backend.execute(f"SELECT migration_id FROM {table}").fetchall()
    unknown = sorted({r[0] for r in rows} - known)
    if unknown:
        raise MigrationError(
            f"the database has migrations this version of Sentinel does not know ({', '.join(unknown)}): "
            "it was upgraded by a newer Sentinel"
        )
