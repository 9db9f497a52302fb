"""Flood and chatter checks against a growing alert history: does one batch's check cost grow with the history?

The check runs inside every engine batch's alert transaction (``alerts.watch.detect_floods_and_chatter``), so its cost
is on the publish-to-alert path. This script fills a migrated database with H past alerts of a few chattering
(rule, subject) pairs and of many quiet ones, each with its engine events, then times the check for a batch that
touched 20 alerts, at each H, with the history indexes of migration 0020 and without them (dropped in the same
database), and prints the time per batch and its ratio to the smallest history.

    python bench/alert_watch.py [--history 0 20000 100000] [--repeat 20]

Uses ``SENTINEL_TEST_DATABASE_URL`` (a server where it may create a scratch database), else an embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg

from sentinel.alerts.lifecycle import ApplyReport
from sentinel.alerts.watch import detect_floods_and_chatter
from sentinel.store import migrations
from sentinel.testing.postgres import postgres_for_tests

INDEXES = {
    "alerts_rule_subject_idx": "CREATE INDEX alerts_rule_subject_idx ON alerts (rule_id, subject)",
    "alert_events_engine_ts_idx": (
        "CREATE INDEX alert_events_engine_ts_idx ON alert_events (alert_id, device_ts) WHERE transition_key IS NOT NULL"
    ),
}
T0 = datetime(2026, 12, 1, tzinfo=UTC)
SUBJECTS = 200  # quiet (rule, subject) pairs the history is spread over, besides the chattering ones


def fill(conn: psycopg.Connection, start: int, stop: int) -> None:
    """Alerts start..stop-1 (closed), three engine events each, spread over SUBJECTS subjects, 10 s apart."""
    conn.execute(
        """WITH added AS (
               INSERT INTO alerts (alert_key, rule_id, device_id, site_id, grade, state, raised_at, subject, township)
               SELECT 'h' || i, 'gas.ch4', 1, 's1', 'yellow', 'normal',
                      %s + make_interval(secs => i * 10), 'dev-' || (i %% %s), '西湖镇'
               FROM generate_series(%s, %s - 1) AS i
               RETURNING alert_id, alert_key, raised_at)
           INSERT INTO alert_events (alert_id, device_ts, actor, to_state, transition_key)
           SELECT alert_id, raised_at + make_interval(secs => k), 'engine', 'normal', alert_key || '|' || k
           FROM added, generate_series(0, 2) AS k""",
        (T0, SUBJECTS, start, stop),
    )
    conn.commit()


def batch_alerts(conn: psycopg.Connection, latest: datetime) -> list[int]:
    """20 alerts this batch touched, of subjects with history, at the history's latest time."""
    ids = []
    with conn.cursor() as cur:
        for n in range(20):
            cur.execute(
                """INSERT INTO alerts (alert_key, rule_id, device_id, site_id, grade, state, raised_at, subject,
                                       township)
                   VALUES (%s, 'gas.ch4', 1, 's1', 'orange', 'normal', %s, %s, '西湖镇') RETURNING alert_id""",
                (f"b{latest.timestamp()}-{n}", latest, f"dev-{n}"),
            )
            (alert_id,) = cur.fetchone() or (0,)
            cur.execute(
                """INSERT INTO alert_events (alert_id, device_ts, actor, to_state, transition_key)
                   VALUES (%s, %s, 'engine', 'active_unack', %s)""",
                (alert_id, latest, f"b{alert_id}"),
            )
            ids.append(alert_id)
    return ids


def time_check(conn: psycopg.Connection, latest: datetime, repeat: int) -> float:
    """Median seconds of one batch's check (each in a transaction rolled back, so every repeat sees the same data)."""
    times = []
    for _ in range(repeat):
        with conn.transaction(force_rollback=True):
            ids = batch_alerts(conn, latest)
            report = ApplyReport(new_alerts=ids, townships={"西湖镇"}, touched=set(ids))
            started = time.perf_counter()
            detect_floods_and_chatter(conn, report, latest)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", type=int, nargs="+", default=[0, 20_000, 100_000], help="past alerts")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rows: list[tuple[int, float, float]] = []
    with postgres_for_tests(os.environ.get("SENTINEL_TEST_DATABASE_URL")) as pg, pg.database("sentinel_bench") as db:
        migrations.upgrade(db)
        with psycopg.connect(db) as conn:
            conn.execute("INSERT INTO sites (site_id, name, township, sector) VALUES ('s1', 'bench', '西湖镇', 'gas')")
            conn.execute("INSERT INTO devices (device, site_id, device_class) VALUES ('dev-0', 's1', 'gas_detector')")
            conn.commit()
            have = 0
            for history in sorted(args.history):
                if history > have:
                    fill(conn, have, history)
                    have = history
                conn.execute("ANALYZE alerts")
                conn.execute("ANALYZE alert_events")
                conn.commit()
                latest = T0 + timedelta(seconds=10 * history + 3)
                with_idx = time_check(conn, latest, args.repeat)
                for name in INDEXES:
                    conn.execute(f"DROP INDEX IF EXISTS {name}")
                conn.commit()
                without = time_check(conn, latest, args.repeat)
                for ddl in INDEXES.values():
                    conn.execute(ddl)
                conn.commit()
                rows.append((history, without, with_idx))
    base_without, base_with = rows[0][1], rows[0][2]
    print(f"{'past alerts':>12} | {'no index ms':>11} | {'ratio':>6} | {'indexed ms':>10} | {'ratio':>6}")
    print(f"{'-' * 12}-+-{'-' * 11}-+-{'-' * 6}-+-{'-' * 10}-+-{'-' * 6}")
    for history, without, with_idx in rows:
        print(
            f"{history:>12,} | {without * 1e3:>11.2f} | {without / base_without:>6.1f} | "
            f"{with_idx * 1e3:>10.2f} | {with_idx / base_with:>6.1f}"
        )
    print("time of one batch's flood and chatter check (20 touched alerts), median; ratio: against the first row")


if __name__ == "__main__":
    main()
