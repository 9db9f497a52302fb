"""Native dialect: daily partitions exist ahead of time, and retention drops old ones without touching newer data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import psycopg

from sentinel.batch import ReadingBatch
from sentinel.store.readings import US_PER_DAY, ReadingsWriter
from sentinel.store.retention import maintain, partitions, utc_today


def _day_readings(days: list[dt.date], per_day: int) -> ReadingBatch:
    epoch = dt.date(1970, 1, 1)
    ts = np.concatenate([(d - epoch).days * US_PER_DAY + np.arange(per_day, dtype=np.int64) * 1_000_000 for d in days])
    n = len(ts)
    return ReadingBatch(
        ts_us=ts.astype(np.int64),
        device_id=np.ones(n, dtype=np.int32),
        metric_id=np.ones(n, dtype=np.int16),
        value=np.arange(n, dtype=np.float64),
    )


def test_partitions_are_created_ahead(migrated_db: str) -> None:
    today = utc_today()
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        report = maintain(conn, "native", retention_days=30, ahead_days=10, today=today)
        names = partitions(conn)
    expected = {f"readings_p{(today + dt.timedelta(days=k)):%Y%m%d}" for k in range(-1, 11)}
    assert expected <= set(names)
    assert report.created >= 3  # the migration made 7 ahead; 10 were asked for


def test_retention_drops_old_partitions_and_keeps_newer_rows(migrated_db: str) -> None:
    today = dt.date(2026, 3, 20)
    days = [today - dt.timedelta(days=k) for k in range(12)]
    writer = ReadingsWriter("native")
    with psycopg.connect(migrated_db) as conn:
        writer.write(conn, _day_readings(days, per_day=50))
        conn.commit()
        writer.committed()
        report = maintain(conn, "native", retention_days=5, ahead_days=3, today=today)
        conn.commit()
        kept = conn.execute("SELECT min(ts)::date, count(*) FROM readings").fetchone()
        names = partitions(conn)
    cutoff = today - dt.timedelta(days=5)
    assert sorted(report.dropped) == sorted(f"readings_p{d:%Y%m%d}" for d in days if d < cutoff)
    assert kept == (cutoff, 50 * 6)  # days cutoff..today survive whole
    assert all(name >= f"readings_p{cutoff:%Y%m%d}" for name in names)


def test_a_day_without_partition_is_kept_and_moved_when_its_partition_arrives(migrated_db: str) -> None:
    old_day = dt.date(2019, 5, 4)
    with psycopg.connect(migrated_db) as conn:
        # Bypass the writer's partition check: a row lands in the default partition.
        conn.execute("INSERT INTO readings VALUES ('2019-05-04 10:00:00+00', 1, 1, 42.0)")
        conn.execute("SELECT sentinel_ensure_partitions(%s, %s)", (old_day, old_day))
        in_part = conn.execute("SELECT count(*) FROM readings_p20190504").fetchone()
        in_default = conn.execute("SELECT count(*) FROM readings_default").fetchone()
    assert (in_part, in_default) == ((1,), (0,))


def test_rows_waiting_in_the_default_partition_move_despite_a_check_constraint(migrated_db: str) -> None:
    """An operator's CHECK constraint on readings must not stop a waiting day from getting its partition
    (ATTACH PARTITION refuses a table that lacks the parent's constraints)."""
    day = dt.date(2019, 6, 7)
    with psycopg.connect(migrated_db) as conn:
        conn.execute("ALTER TABLE readings ADD CONSTRAINT plausible_value CHECK (value > -1e9)")
        conn.execute("INSERT INTO readings VALUES ('2019-06-07 10:00:00+00', 1, 1, 42.0)")
        conn.execute("SELECT sentinel_ensure_partitions(%s, %s)", (day, day))
        where = conn.execute("SELECT tableoid::regclass::text FROM readings WHERE ts = '2019-06-07 10:00:00+00'")
        assert where.fetchall() == [("readings_p20190607",)]
        constraints = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'readings_p20190607'::regclass AND contype = 'c'"
        ).fetchall()
        assert ("plausible_value",) in constraints
