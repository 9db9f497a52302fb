"""A day's partition created in a transaction that then rolls back must not be remembered as existing.

The readings writer (native dialect) creates the daily partition of a new day inside the caller's transaction and
caches the days it knows have one, so later batches of that day skip the call. If that transaction (or the
savepoint around the write) rolls back after the write returned - a later statement of the batch fails, the
database refuses part of the batch for its data, the connection drops - the partition is gone; a cache that still
holds the day sends every later reading of it to the default partition (slower queries, and retention's partition
drop misses them). Each test rolls a day's partition back, commits something else, then writes the day again and
checks with ``tableoid::regclass`` where its rows are. Real PostgreSQL throughout.
"""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
import pytest

from sentinel.batch import IngestBatch, MessageKeys, ReadingBatch
from sentinel.errors import DatabaseUnavailable
from sentinel.store.ingest_writer import IngestWriter
from sentinel.store.readings import US_PER_DAY, ReadingsWriter
from sentinel.wire.deadletter import DeadLetter

# Days long before any partition the migration creates ahead, so each starts with none.
DAY = dt.date(2019, 5, 4)
OTHER_DAY = dt.date(2019, 5, 9)
EPOCH = dt.date(1970, 1, 1)
DROP_CONNECTION = "drop the connection"


def _readings(day: dt.date, n: int, value: float = 1.0) -> ReadingBatch:
    ts = (day - EPOCH).days * US_PER_DAY + np.arange(n, dtype=np.int64) * 1_000_000
    return ReadingBatch(
        ts_us=ts,
        device_id=np.ones(n, dtype=np.int32),
        metric_id=np.ones(n, dtype=np.int16),
        value=np.full(n, value, dtype=np.float64),
    )


def _ingest(day: dt.date, n: int, value: float = 1.0, letters: list[DeadLetter] | None = None) -> IngestBatch:
    no_messages = MessageKeys(np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int64))
    return IngestBatch(0, _readings(day, n, value), no_messages, dead_letters=letters or [])


def _where(db: str, day: dt.date) -> dict[str, int]:
    """Which table holds the readings of ``day``, and how many."""
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT tableoid::regclass::text, count(*) FROM readings WHERE ts >= %s AND ts < %s GROUP BY 1",
            (lo, lo + dt.timedelta(days=1)),
        ).fetchall()
    return {str(table): int(n) for table, n in rows}


def _partition(day: dt.date) -> str:
    return f"readings_p{day:%Y%m%d}"


# ---------------------------------------------------------------------------------------------- the writer alone
def test_a_day_whose_transaction_rolled_back_gets_its_partition_later(migrated_db: str) -> None:
    writer = ReadingsWriter("native")
    with psycopg.connect(migrated_db) as conn:
        writer.write(conn, _readings(DAY, 3))  # creates DAY's partition...
        conn.rollback()  # ...which a failure later in the batch takes back
        writer.write(conn, _readings(OTHER_DAY, 2))
        conn.commit()
        writer.committed()
        writer.write(conn, _readings(DAY, 5))
        conn.commit()
        writer.committed()
    assert _where(migrated_db, DAY) == {_partition(DAY): 5}
    assert _where(migrated_db, OTHER_DAY) == {_partition(OTHER_DAY): 2}


def test_a_day_whose_savepoint_rolled_back_gets_its_partition_later(migrated_db: str) -> None:
    writer = ReadingsWriter("native")

    def fails_after_writing(conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():  # a savepoint, as the ingest writer puts around each part it retries
            writer.write(conn, _readings(DAY, 3))
            conn.execute("SELECT 1 / 0")  # a later statement under the same savepoint fails

    with psycopg.connect(migrated_db) as conn:
        conn.execute("SELECT 1")  # the surrounding transaction is open: conn.transaction() makes a savepoint
        with pytest.raises(psycopg.errors.DivisionByZero):
            fails_after_writing(conn)
        writer.write(conn, _readings(OTHER_DAY, 2))  # the surrounding transaction goes on and commits
        conn.commit()
        writer.committed()
        writer.write(conn, _readings(DAY, 5))
        conn.commit()
        writer.committed()
    assert _where(migrated_db, DAY) == {_partition(DAY): 5}


def test_rows_already_in_the_default_partition_move_when_the_writer_creates_the_day(migrated_db: str) -> None:
    with psycopg.connect(migrated_db) as conn:
        # As the cache bug left them: readings of a day without a partition, in the default partition.
        conn.execute(
            "INSERT INTO readings VALUES ('2019-05-04 12:00:00+00', 1, 1, 1.0), ('2019-05-04 23:59:59+00', 1, 1, 2.0)"
        )
        conn.commit()
    assert _where(migrated_db, DAY) == {"readings_default": 2}
    writer = ReadingsWriter("native")
    with psycopg.connect(migrated_db) as conn:
        writer.write(conn, _readings(DAY, 3))
        conn.commit()
        writer.committed()
        indexed = conn.execute(
            "SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", (_partition(DAY),)
        ).fetchone()
    assert _where(migrated_db, DAY) == {_partition(DAY): 5}
    assert indexed == (1,)  # the attached partition got the BRIN index on ts too


# ------------------------------------------------------------------------------------ through the ingest writer
def test_a_day_refused_for_its_data_gets_its_partition_when_its_readings_come(migrated_db: str) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE readings ADD CONSTRAINT plausible_value CHECK (value < 1000)")
    writer = IngestWriter(migrated_db, "native")
    try:
        # The only reading of DAY is refused: dead-lettered, the batch commits without DAY's partition.
        stored = writer.write(_ingest(DAY, 1, value=5000.0))
        assert len(stored.refused) == 1
        writer.write(_ingest(DAY, 4))
    finally:
        writer.close()
    assert _where(migrated_db, DAY) == {_partition(DAY): 4}


def test_a_day_whose_connection_dropped_gets_its_partition_when_its_readings_come(migrated_db: str) -> None:
    # A dead letter with this reason makes the server end the writer's connection mid-transaction.
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(
            f"""CREATE FUNCTION drop_connection() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.reason = '{DROP_CONNECTION}' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
                    RETURN NEW;
                END $$"""
        )
        conn.execute(
            "CREATE TRIGGER drop_connection BEFORE INSERT ON dead_letters "
            "FOR EACH ROW EXECUTE FUNCTION drop_connection()"
        )
    dropper = DeadLetter(b"x", "mqtt:x", datetime.now(UTC), DROP_CONNECTION, "", "malformed_json")
    writer = IngestWriter(migrated_db, "native")
    try:
        with pytest.raises(DatabaseUnavailable):
            writer.write(_ingest(DAY, 3, letters=[dropper]))  # DAY's partition is created, then lost
        writer.write(_ingest(OTHER_DAY, 2))
        writer.write(_ingest(DAY, 5))
    finally:
        writer.close()
    assert _where(migrated_db, DAY) == {_partition(DAY): 5}
    assert _where(migrated_db, OTHER_DAY) == {_partition(OTHER_DAY): 2}
