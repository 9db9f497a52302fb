"""Migration 0013 on a database that already holds what it changes: repeated statuses (stored once per
re-subscription before issue 13) are reduced to one row per key, and old dead letters get their size and hash."""

from __future__ import annotations

import hashlib

import psycopg

from sentinel.registry.repository import upsert_registry
from sentinel.store import migrations
from sentinel.testing.registry import small_registry
from tests.store.history import migrate_to_before


def test_existing_duplicates_are_removed_and_letters_hashed(db_url: str) -> None:
    pending = migrate_to_before(db_url, "0013_input_limits")
    with psycopg.connect(db_url) as conn:
        upsert_registry(conn, small_registry("m13", sites=1, devices_per_site=1))
        (device_id,) = conn.execute("SELECT device_id FROM devices").fetchone() or (0,)
        for received in ("2026-12-05T01:00:00Z", "2026-12-05T02:00:00Z", "2026-12-05T03:00:00Z"):
            conn.execute(
                """INSERT INTO device_events (ts, device_id, kind, name, received_at)
                   VALUES ('2026-12-05T00:59:00Z', %s, 'status', 'online', %s)""",
                (device_id, received),
            )
        conn.execute(
            """INSERT INTO device_events (ts, device_id, kind, name, received_at)
               VALUES ('2026-12-05T00:59:00Z', %s, 'status', 'offline', now())""",
            (device_id,),
        )
        conn.execute(
            "INSERT INTO dead_letters (received_at, source, reason, raw) VALUES (now(), 'mqtt:x', 'old', 'abc')"
        )
    assert migrations.upgrade(db_url) == pending
    with psycopg.connect(db_url) as conn:
        online = conn.execute(
            "SELECT count(*), min(received_at) = '2026-12-05T01:00:00Z' FROM device_events WHERE name = 'online'"
        ).fetchone()
        offline = conn.execute("SELECT count(*) FROM device_events WHERE name = 'offline'").fetchone()
        letter = conn.execute("SELECT size, sha256, code FROM dead_letters").fetchone()
    assert online == (1, True)  # the first one received is kept
    assert offline == (1,)  # another name at the same time is another event
    assert letter == (3, hashlib.sha256(b"abc").digest(), "")
