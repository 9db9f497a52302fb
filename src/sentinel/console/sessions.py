"""Console sign-in: an API key exchanged for a server-side session.

The browser holds only a random token (cookie); PostgreSQL holds its SHA-256, the key it belongs to, the CSRF token
of its forms and its expiry. Every request looks the session up joined with ``api_keys``, so signing out, expiry and
revoking the key all end it at once; open live streams are asked about together on each poll of the feed
(:func:`live_sessions`). The key's name is the actor recorded for every action, as in the API.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from sentinel.registry.repository import token_digest


@dataclass(frozen=True)
class Officer:
    """Who is signed in: the API key's name (the actor) and role, and the session's CSRF token."""

    name: str
    role: str
    csrf: str


def sign_in(conn: psycopg.Connection[Any], api_key: str, now: datetime, hours: float) -> tuple[str, Officer] | None:
    """A new session for a valid, unrevoked non-gateway key: (cookie token, officer); None for a wrong key."""
    row = conn.execute(
        "SELECT key_id, name, role FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
        (token_digest(api_key.strip()),),
    ).fetchone()
    if row is None or row[2] == "gateway":
        return None
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    with conn.transaction():
        conn.execute(
            """INSERT INTO console_sessions (session_hash, key_id, csrf_token, created_at, expires_at)
               VALUES (%s, %s, %s, %s, %s)""",
            (token_digest(token), row[0], csrf, now, now + timedelta(hours=hours)),
        )
        conn.execute("DELETE FROM console_sessions WHERE expires_at < %s - interval '7 days'", (now,))
    return token, Officer(row[1], row[2], csrf)


def gateway_key(conn: psycopg.Connection[Any], api_key: str) -> bool:
    row = conn.execute(
        "SELECT role FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL", (token_digest(api_key.strip()),)
    ).fetchone()
    return row is not None and row[0] == "gateway"


def lookup(conn: psycopg.Connection[Any], token: str | None, now: datetime) -> Officer | None:
    if not token:
        return None
    row = conn.execute(
        """SELECT k.name, k.role, s.csrf_token FROM console_sessions s JOIN api_keys k USING (key_id)
           WHERE s.session_hash = %s AND s.ended_at IS NULL AND s.expires_at > %s AND k.revoked_at IS NULL""",
        (token_digest(token), now),
    ).fetchone()
    return None if row is None else Officer(row[0], row[1], row[2])


def sign_out(conn: psycopg.Connection[Any], token: str | None, now: datetime) -> None:
    if token:
        with conn.transaction():
            conn.execute(
                "UPDATE console_sessions SET ended_at = %s WHERE session_hash = %s AND ended_at IS NULL",
                (now, token_digest(token)),
            )


def csrf_ok(officer: Officer, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(officer.csrf.encode(), (submitted or "").encode())


async def live_sessions(conn: psycopg.AsyncConnection[Any], digests: Iterable[str], now: datetime) -> set[str]:
    """Which of these sessions (by their token's digest) still hold: not signed out, not expired, key not revoked."""
    cur = await conn.execute(
        """SELECT s.session_hash FROM console_sessions s JOIN api_keys k USING (key_id)
           WHERE s.session_hash = ANY(%s) AND s.ended_at IS NULL AND s.expires_at > %s AND k.revoked_at IS NULL""",
        (list(digests), now),
    )
    return {row[0] for row in await cur.fetchall()}
