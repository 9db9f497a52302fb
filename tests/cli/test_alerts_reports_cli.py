"""`sentinel alerts reports` filters by report type with ``--type`` (and with 0.1's ``--kind``, deprecated until 0.2);
`sentinel hazards list` prints through the same shared table helpers (sentinel.cli_common)."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg


def _sentinel(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env |= {"SENTINEL_DATABASE_URL": db, "SENTINEL_DISPLAY_TZ": "Asia/Shanghai", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "sentinel", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_reports_by_type_and_by_the_deprecated_kind(migrated_db: str) -> None:
    with psycopg.connect(migrated_db) as conn:
        for key, report_type, desk in (("k-flood", "flood", "新庄镇"), ("k-chatter", "chatter", "华士镇")):
            conn.execute(
                """INSERT INTO alert_reports (report_type, report_key, desk, window_start, window_end, count)
                   VALUES (%s, %s, %s, '2026-12-05T00:00:00Z', '2026-12-05T00:10:00Z', 11)""",
                (report_type, key, desk),
            )
    for flag in ("--type", "--kind"):
        shown = _sentinel(migrated_db, "alerts", "reports", flag, "flood")
        assert shown.returncode == 0, shown.stderr
        assert "report_type" in shown.stdout
        assert "新庄镇" in shown.stdout
        assert "华士镇" not in shown.stdout
        assert "Asia/Shanghai" in shown.stdout  # window times in the display zone, named in the caption
        assert "08:00" in shown.stdout  # 00:00 UTC
    both = _sentinel(migrated_db, "alerts", "reports")
    assert "新庄镇" in both.stdout
    assert "华士镇" in both.stdout


def test_hazards_list_uses_the_shared_table(migrated_db: str) -> None:
    listed = _sentinel(migrated_db, "hazards", "list")
    assert listed.returncode == 0, listed.stderr
    assert "0 hazards" in listed.stdout
