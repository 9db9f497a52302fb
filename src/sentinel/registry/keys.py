"""API keys looked up per request, revoked by command: a revoked key stops at once, a new one works at once.

The registry view is refreshed every few seconds, which is fine for devices but not for keys: a revoked key kept
working for 7-10 s and a new key was refused for as long (issues 12 and 13). :class:`KeyStore` asks PostgreSQL on
every request: one lookup by the unique index on ``api_keys.key_hash`` on a kept connection (about a tenth of a
millisecond on a local server), so a revocation by any process, ``sentinel keys revoke`` included, holds for the
next request. There is no positive cache, because a cache is what let revoked keys through; should the lookup be
measured too slow, the place for one is here, invalidated by LISTEN/NOTIFY.

While the database is away the last registry view answers (``fallback``), so gateways can still post telemetry
that the sink spools; a key revoked during the outage then works until the database returns. That is the
trade-off chosen: refusing all ingest during an outage would lose readings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from sentinel.errors import DatabaseUnavailable, SentinelError
from sentinel.registry.repository import ApiKey, RegistryView, token_digest
from sentinel.store.database import connect

log = logging.getLogger(__name__)

_LOOKUP = """
SELECT k.name, k.role, k.gateway_id,
       CASE WHEN k.role = 'gateway' THEN
            coalesce((SELECT array_agg(site_id) FROM gateway_sites g WHERE g.gateway_id = k.gateway_id), '{}')
       END
FROM api_keys k WHERE k.key_hash = %s AND k.revoked_at IS NULL
"""


class KeyStore:
    def __init__(self, conninfo: str, fallback: Callable[[], RegistryView] | None = None) -> None:
        self.conninfo = conninfo
        self._fallback = fallback
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def lookup(self, token: str) -> ApiKey | None:
        """The live key for ``token``, or None when it is unknown or revoked."""
        digest = token_digest(token)
        try:
            return self._query(digest)
        except DatabaseUnavailable:
            if self._fallback is None:
                raise
            return self._fallback().keys.get(digest)

    def _query(self, digest: str) -> ApiKey | None:
        with self._lock:
            for attempt in (1, 2):  # a kept connection may have died since the last request
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = connect(self.conninfo, autocommit=True)
                    row = self._conn.execute(_LOOKUP, (digest,)).fetchone()
                    break
                except psycopg.OperationalError as exc:
                    self.close()
                    if attempt == 2:
                        raise DatabaseUnavailable(f"API key lookup: {type(exc).__name__}") from exc
        if row is None:
            return None
        name, role, gateway, sites = row
        return ApiKey(str(name), str(role), gateway, frozenset(sites) if sites is not None else None)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                log.debug("closing the key lookup connection failed", exc_info=True)


@dataclass(frozen=True, slots=True)
class KeyRow:
    name: str
    role: str
    gateway: str | None
    created_at: datetime
    revoked_at: datetime | None


def list_keys(conn: psycopg.Connection[Any]) -> list[KeyRow]:
    rows = conn.execute(
        "SELECT name, role, gateway_id, created_at, revoked_at FROM api_keys ORDER BY revoked_at NULLS FIRST, name"
    ).fetchall()
    return [KeyRow(*row) for row in rows]


class UnknownKey(SentinelError):
    """No API key has that name."""


def revoke_key(conn: psycopg.Connection[Any], name: str) -> datetime:
    """Revoke the key ``name`` now (idempotent: a revoked key keeps its first revocation time)."""
    with conn.transaction():
        row = conn.execute(
            """UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE name = %s RETURNING revoked_at""",
            (name,),
        ).fetchone()
    if row is None:
        raise UnknownKey(f"no API key named {name!r} (see `sentinel keys list`)")
    revoked: datetime = row[0]
    return revoked
