"""The readings store: numpy columns in, binary COPY out.

A batch of N readings becomes one PostgreSQL binary COPY stream built by numpy (store/copy.py), no Python work
per row.

On the native dialect the writer makes sure the daily partitions of a batch's days exist before copying (cached, so
one cheap call per new day); rows of a day without a partition would otherwise land in the default partition.
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
    """Writes ReadingBatch with binary COPY inside the caller's transaction."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._days_ready: set[int] = set()
        self._pending_days: set[int] = set()

    def write(self, conn: psycopg.Connection[Any], columns: ReadingBatch) -> int:
        if len(columns) == 0:
            return 0
        if self.dialect == "native":
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
        # Only remember days once the transaction that created them commits; re-asking is cheap and idempotent.
        self._pending_days |= days

    def committed(self) -> None:
        """Tell the writer the surrounding transaction committed (its partitions are now real)."""
        self._days_ready |= self._pending_days
        self._pending_days = set()


def _runs(days: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for day in days:
        if runs and runs[-1][1] == day - 1:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
