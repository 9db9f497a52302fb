"""Migration 0017 on a database whose history already holds shelve events with the expiry baked into the reason as
UTC text: the expiry moves to ``alert_events.shelved_until`` and the reason keeps the officer's words; other events
are left as they were."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from sentinel.registry.repository import upsert_registry
from sentinel.store import migrations
from sentinel.testing.registry import small_registry
from tests.store.history import migrate_to_before


def test_shelve_expiry_text_becomes_data(db_url: str) -> None:
    pending = migrate_to_before(db_url, "0017_shelve_until")
    with psycopg.connect(db_url) as conn:
        upsert_registry(conn, small_registry("m17", sites=1, devices_per_site=1))
        (device_id, site_id) = conn.execute("SELECT device_id, site_id FROM devices").fetchone() or (0, "")
        (alert_id,) = conn.execute(
            """INSERT INTO alerts (alert_key, rule_id, subject, device_id, site_id, kind, grade, state, raised_at,
                                   acked, township, sector, condition_active)
               VALUES ('m17', 'gas.ch4_lel', 'd', %s, %s, 'alarm', 'orange', 'shelved', now(), true, 't', 'gas', true)
               RETURNING alert_id""",
            (device_id, site_id),
        ).fetchone() or (0,)
        for reason in (
            "shelve: shelved until 2026-12-05T06:11:22.123456+00:00: 企业正在抢修: 暂时搁置",
            "ack: shelved until tomorrow: words an officer typed",
            "shelve: no expiry recorded",
        ):
            conn.execute(
                """INSERT INTO alert_events (alert_id, at, actor, from_state, to_state, reason)
                   VALUES (%s, now(), 'officer', 'active_ack', 'shelved', %s)""",
                (alert_id, reason),
            )
    assert migrations.upgrade(db_url) == pending
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT reason, shelved_until FROM alert_events ORDER BY event_id").fetchall()
    assert rows == [
        ("shelve: 企业正在抢修: 暂时搁置", datetime(2026, 12, 5, 6, 11, 22, 123456, tzinfo=UTC)),
        ("ack: shelved until tomorrow: words an officer typed", None),
        ("shelve: no expiry recorded", None),
    ]
