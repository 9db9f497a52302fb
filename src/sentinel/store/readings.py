"""The readings store: numpy columns in, binary COPY out.

A batch of N readings becomes one PostgreSQL binary COPY stream built by numpy (store/copy.py), no Python work
per row.

On the native dialect the writer makes sure the daily partitions of a batch's days exist before copying (cached, so
one cheap call per new day); rows of a day without a partition would otherwise land in the default partition.

The partition is created inside the caller's transaction, which can still roll back after :meth:`ReadingsWriter.write`
returns: a later statement of the batch fails, a savepoint around part of the batch is rolled back because the
database refused that part for its data, the connection drops (even during COMMIT, when nobody knows whether it
committed). So a day is cached only once its partition has been seen in the catalog *after* a commit, at the start of
the next write: a day cached on a creation that was rolled back would send all its later readings to the default
partition, for good.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from sentinel.batch import ReadingBatch
from sentinel.store.copy import binary_copy

US_PER_DAY = 86_400_000_000
COPY_SQL = "COPY readings (ts, device_id, metric_id, value) FROM STDIN (FORMAT BINARY)"


def encode_copy(batch: ReadingBatch) -> bytes:
    """The binary COPY stream of these readings."""
    return binary_copy(
        [
            ("timestamptz", batch.ts_us),
            ("int4", batch.device_id),
            ("int2", batch.metric_id),
            ("float8", batch.value),
        ]
    )


class ReadingsWriter:
    """Writes ReadingBatch with binary COPY inside the caller's transaction.

    The caller calls :meth:`committed` after each commit of a transaction it wrote in (and nothing after a
    rollback)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        # Days whose partition was seen attached after a commit: their batches skip the partition call.
        self._days_ready: set[int] = set()
        # Days ensured in a transaction or savepoint that may have been rolled back since; checked after a commit.
        self._days_unsure: set[int] = set()
        self._check_due = False

    def write(self, conn: psycopg.Connection[Any], columns: ReadingBatch) -> int:
        if len(columns) == 0:
            return 0
        if self.dialect == "native":
            if self._check_due:
                self._confirm_days(conn)
            self._ensure_days(conn, columns.ts_us)
        with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
            copy.write(encode_copy(columns))
        return len(columns)

    def _ensure_days(self, conn: psycopg.Connection[Any], ts_us: npt.NDArray[np.int64]) -> None:
        days = {int(d) for d in np.unique(ts_us // US_PER_DAY)} - self._days_ready
        if not days:
            return
        # Contiguous runs become one call each; a replay of an old day creates just that day.
        for first, last in _runs(sorted(days)):
            conn.execute(
                "SELECT sentinel_ensure_partitions(DATE '1970-01-01' + %s::int, DATE '1970-01-01' + %s::int)",
                (first, last),
            )
        self._days_unsure |= days

    def _confirm_days(self, conn: psycopg.Connection[Any]) -> None:
        """Cache the unsure days whose partition is attached now. The first write after a commit runs this before
        it creates anything, so the catalog shows only what committed; a day whose creation was rolled back is not
        there and is simply ensured again by its next batch (which also moves any of its rows out of the default
        partition)."""
        unsure = sorted(self._days_unsure)
        rows = conn.execute(
            """SELECT d FROM unnest(%s::int[]) AS d
               WHERE EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                             WHERE i.inhparent = 'readings'::regclass
                               AND c.relname = 'readings_p' || to_char(DATE '1970-01-01' + d, 'YYYYMMDD'))""",
            (unsure,),
        ).fetchall()
        self._days_ready.update(int(r[0]) for r in rows)
        self._days_unsure.difference_update(unsure)
        self._check_due = False

    def committed(self) -> None:
        """Tell the writer the surrounding transaction committed. Which of its partitions survived (a savepoint may
        have taken some back) is checked against the catalog at the next write."""
        self._check_due = bool(self._days_unsure)


def _runs(days: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for day in days:
        if runs and runs[-1][1] == day - 1:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
