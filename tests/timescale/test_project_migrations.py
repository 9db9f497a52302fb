"""The project's real migrations on a real TimescaleDB engine: they apply once, a second run applies nothing, the
readings store is a compressed hypertable with retention and a continuous aggregate, and the views above it answer
the same queries as on the native dialect."""

from __future__ import annotations

import psycopg
import pytest

from sentinel.store.migrations import known_versions, upgrade
from sentinel.store.retention import maintain
from tests.views_scenario import EXPECTED_1M, fill_and_query

pytestmark = pytest.mark.timescale

VIEWS = ["readings_1m", "v_readings", "v_readings_1m", "v_devices", "v_open_alerts", "v_dead_letters"]


def test_project_migrations_on_timescale(fresh_timescale_url: str) -> None:
    assert upgrade(fresh_timescale_url) == known_versions()
    assert upgrade(fresh_timescale_url) == []
    with psycopg.connect(fresh_timescale_url, autocommit=True) as conn:
        dialect = conn.execute("SELECT value FROM sentinel_meta WHERE key = 'readings_dialect'").fetchone()
        hypertables = conn.execute(
            "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"
        ).fetchall()
        caggs = conn.execute(
            "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
        ).fetchall()
        jobs = {r[0] for r in conn.execute("SELECT proc_name FROM timescaledb_information.jobs")}
        counts = {view: conn.execute(f"SELECT count(*) FROM {view}").fetchone() for view in VIEWS}
        report = maintain(conn, "timescale", retention_days=30, ahead_days=7)
        drop_after = conn.execute(
            "SELECT config->>'drop_after' FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
        ).fetchone()
    assert dialect == ("timescale",)
    assert hypertables == [("readings", True)]
    assert caggs == [("readings_1m", False)]  # real-time: recent rows show before a refresh
    assert {"policy_compression", "policy_retention", "policy_refresh_continuous_aggregate"} <= jobs
    assert counts == dict.fromkeys(VIEWS, (0,))
    assert report.dialect == "timescale"
    assert drop_after == ("30 days",)


def test_views_answer_over_timescale(fresh_timescale_url: str) -> None:
    upgrade(fresh_timescale_url)
    with psycopg.connect(fresh_timescale_url, autocommit=True) as conn:
        assert fill_and_query(conn) == (12, EXPECTED_1M)
