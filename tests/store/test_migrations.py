"""`sentinel db upgrade` creates every table and view, records what it applied, and a second run changes nothing."""

from __future__ import annotations

import psycopg
import pytest

from sentinel.errors import MigrationError
from sentinel.store import migrations
from tests.views_scenario import EXPECTED_1M, fill_and_query

TABLES = {
    "sites",
    "devices",
    "gateways",
    "gateway_sites",
    "metrics",
    "readings",
    "dead_letters",
    "alerts",
    "alert_events",
    "hazards",
    "hazard_events",
    "outbox",
    "api_keys",
    "message_log",
    "sentinel_meta",
}
VIEWS = {"readings_1m", "v_readings", "v_readings_1m", "v_devices", "v_open_alerts", "v_dead_letters"}

CATALOG = """
SELECT c.relname, c.relkind, coalesce(string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod), ','
       ORDER BY a.attnum), '')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
GROUP BY 1, 2 ORDER BY 1
"""


def snapshot(conninfo: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(conninfo) as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(CATALOG)]


def test_upgrade_creates_every_table_and_view(db_url: str) -> None:
    applied = migrations.upgrade(db_url)
    assert applied == migrations.known_versions()
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        tables = {name for name, kind in rows if kind == "BASE TABLE"}
        views = {name for name, kind in rows if kind == "VIEW"}
        assert tables >= TABLES, TABLES - tables
        assert views >= VIEWS, VIEWS - views
        for view in VIEWS:
            conn.execute(f"SELECT * FROM {view} LIMIT 1").fetchall()
        dialect = conn.execute("SELECT value FROM sentinel_meta WHERE key = 'readings_dialect'").fetchone()
        assert dialect == ("native",)


def test_second_upgrade_changes_nothing(db_url: str) -> None:
    migrations.upgrade(db_url)
    before = snapshot(db_url)
    assert migrations.upgrade(db_url) == []
    assert snapshot(db_url) == before
    assert migrations.applied_versions(db_url) == migrations.known_versions()


def test_database_from_a_newer_sentinel_is_refused(db_url: str) -> None:
    migrations.upgrade(db_url)
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc) "
            "VALUES ('x', '9999_from_the_future', now())"
        )
    with pytest.raises(MigrationError, match="9999_from_the_future"):
        migrations.upgrade(db_url)


def test_views_answer_over_native_partitions(migrated_db: str) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        assert fill_and_query(conn) == (12, EXPECTED_1M)
