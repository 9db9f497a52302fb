"""`sentinel demo` on the embedded defaults (no SENTINEL_DATABASE_URL): headless for a bounded time, alerts in all
four sectors appear in the database's alerts table within 60 s."""

from __future__ import annotations

import shutil

from sentinel.demo import Board, DemoRun, board, run_demo
from sentinel.settings import load_settings
from sentinel.sim.scenario import SECTORS
from sentinel.testing.postgres import scratch_dir


def test_demo_on_embedded_defaults_raises_alerts_in_all_four_sectors_within_60_s() -> None:
    data = scratch_dir("sentinel-demo-test-")  # the embedded server's user must reach it when run as root
    seen: list[Board] = []
    stored: list[int] = []

    def check(run: DemoRun) -> None:  # called while the database is still up
        seen.append(board(run.conninfo, run.since))
        from sentinel.store.database import connect

        with connect(run.conninfo) as conn:
            row = conn.execute("SELECT count(*) FROM readings").fetchone()
            stored.append(int(row[0]) if row else 0)

    try:
        settings = load_settings(None, data_dir=data, database_url=None, mqtt_url=None, http_port=0)
        run = run_demo(settings, duration_s=55, headless=True, before_stop=check)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    assert run.sent > 0
    assert stored[0] > 0
    assert seen[0].sectors() == set(SECTORS), seen[0].by_sector_grade
