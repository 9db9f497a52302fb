"""Keeping the readings store in shape: partitions created ahead, old data dropped.

On the native dialect this is Sentinel's job (``sentinel db maintain``, and the serve loop once an hour): create the
daily partitions for the next days and drop those older than the retention. On TimescaleDB the database's own
policies do it; here we only make the retention policy match the configured number of days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import psycopg


@dataclass
class MaintenanceReport:
    dialect: str
    created: int = 0
    dropped: list[str] = field(default_factory=list)
    retention_days: int = 0


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def maintain(
    conn: psycopg.Connection[Any],
    dialect: str,
    *,
    retention_days: int,
    ahead_days: int,
    today: dt.date | None = None,
) -> MaintenanceReport:
    """Create partitions ``ahead_days`` ahead and drop data older than ``retention_days`` (native), or align the
    TimescaleDB retention policy. ``today`` is injectable so tests can move the calendar."""
    today = today or utc_today()
    report = MaintenanceReport(dialect=dialect, retention_days=retention_days)
    if dialect == "native":
        row = conn.execute(
            "SELECT sentinel_ensure_partitions(%s, %s)",
            (today - dt.timedelta(days=1), today + dt.timedelta(days=ahead_days)),
        ).fetchone()
        report.created = int(row[0]) if row else 0
        cutoff = today - dt.timedelta(days=retention_days)
        report.dropped = [r[0] for r in conn.execute("SELECT * FROM sentinel_drop_partitions_before(%s)", (cutoff,))]
        conn.execute("DELETE FROM message_log WHERE received_at < %s", (cutoff,))
    elif dialect == "timescale":
        _align_timescale_retention(conn, retention_days)
    return report


def _align_timescale_retention(conn: psycopg.Connection[Any], days: int) -> None:
    row = conn.execute(
        "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_retention' AND hypertable_name = 'readings'"
    ).fetchone()
    wanted = f"{days} days"
    if row is not None and row[0] == wanted:
        return
    conn.execute("SELECT remove_retention_policy('readings', if_exists => true)")
    conn.execute("SELECT add_retention_policy('readings', %s::interval)", (wanted,))


def partitions(conn: psycopg.Connection[Any]) -> list[str]:
    """Names of the daily readings partitions, oldest first (native dialect)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'readings'::regclass AND c.relname ~ '^readings_p[0-9]{8}$' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]
