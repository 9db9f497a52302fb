"""The project's real migrations on a real TimescaleDB engine: they apply once, a second run applies nothing,
and the views above the readings store answer queries.
"""

from __future__ import annotations

import psycopg
import pytest

from sentinel.errors import DatabaseUnavailable
from sentinel.store.migrations import upgrade

pytestmark = pytest.mark.timescale

VIEWS = ["readings_1m", "v_readings", "v_readings_1m", "v_devices", "v_open_alerts", "v_dead_letters"]


@pytest.mark.xfail(
    strict=True,
    raises=DatabaseUnavailable,
    reason="yoyo applies each migration on a second connection while the first stays open; the pglite engine "
    "serves one connection at a time, so the second gets SQLSTATE 53300 (see FINDINGS.md). Remove this "
    "marker when upgrade() runs on a single connection.",
)
def test_project_migrations_on_timescale(fresh_timescale_url: str) -> None:
    applied = upgrade(fresh_timescale_url)
    assert applied, "the first upgrade of an empty database applied nothing"
    assert upgrade(fresh_timescale_url) == []
    with psycopg.connect(fresh_timescale_url) as conn:
        dialect = conn.execute("SELECT value FROM sentinel_meta WHERE key = 'readings_dialect'").fetchone()
        hypertables = conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables").fetchall()
        caggs = conn.execute("SELECT view_name FROM timescaledb_information.continuous_aggregates").fetchall()
        counts = {view: conn.execute(f"SELECT count(*) FROM {view}").fetchone() for view in VIEWS}
    assert dialect == ("timescale",)
    assert hypertables == [("readings",)]
    assert caggs == [("readings_1m",)]
    assert counts == dict.fromkeys(VIEWS, (0,))
