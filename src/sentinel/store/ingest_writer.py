"""One durable write of an IngestBatch: readings and message keys by binary COPY, events and dead letters by
executemany, all in one transaction (optionally with the spool position it replays).

Synchronous psycopg on purpose: the ingest sink runs it in a worker thread, so the event loop keeps reading MQTT
and HTTP while PostgreSQL works, and COPY needs no async plumbing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg

from sentinel.batch import IngestBatch
from sentinel.errors import DatabaseUnavailable, StoreError
from sentinel.store.copy import binary_copy
from sentinel.store.database import connect, one_line
from sentinel.store.readings import ReadingsWriter

MESSAGE_LOG_COPY = "COPY message_log (device_id, seq, ts, received_at) FROM STDIN (FORMAT BINARY)"


class IngestWriter:
    def __init__(self, conninfo: str, dialect: str) -> None:
        self.conninfo = conninfo
        self.readings = ReadingsWriter(dialect)
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.conninfo)
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def write(self, batch: IngestBatch, spool_mark: tuple[str, int] | None = None) -> None:
        """Commit the batch, or raise DatabaseUnavailable (connection trouble: retry later) or StoreError."""
        with self._lock:
            try:
                conn = self._connection()
                with conn.transaction():
                    self._write(conn, batch)
                    if spool_mark is not None:
                        conn.execute(
                            """INSERT INTO spool_progress (segment, applied_to) VALUES (%s, %s)
                               ON CONFLICT (segment) DO UPDATE SET applied_to = excluded.applied_to""",
                            spool_mark,
                        )
                self.readings.committed()
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._drop_connection()
                raise DatabaseUnavailable(one_line(exc)) from exc
            except psycopg.Error as exc:
                self._drop_connection()
                raise StoreError(f"writing an ingest batch failed: {one_line(exc)}") from exc

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _write(self, conn: psycopg.Connection[Any], batch: IngestBatch) -> None:
        self.readings.write(conn, batch.readings)
        m = batch.messages
        if len(m):
            stream = binary_copy(
                [
                    ("int4", m.device_id),
                    ("int8", m.seq),
                    ("timestamptz", m.ts_us),
                    ("timestamptz", np.full(len(m), batch.received_at_us, dtype=np.int64)),
                ]
            )
            with conn.cursor() as cur, cur.copy(MESSAGE_LOG_COPY) as copy:
                copy.write(stream)
        with conn.cursor() as cur:
            if batch.events:
                cur.executemany(
                    """INSERT INTO device_events (ts, device_id, kind, name, value, state, note, received_at)
                       VALUES (to_timestamp(%s / 1e6), %s, %s, %s, %s, %s, %s, to_timestamp(%s / 1e6))""",
                    [
                        (e.ts_us, e.device_id, e.kind, e.name, e.value, e.state, e.note, batch.received_at_us)
                        for e in batch.events
                    ],
                )
            if batch.dead_letters:
                cur.executemany(
                    "INSERT INTO dead_letters (received_at, source, reason, path, raw) VALUES (%s, %s, %s, %s, %s)",
                    [(d.received_at, d.source, d.reason, d.path, d.raw) for d in batch.dead_letters],
                )

    # ------------------------------------------------------------------ spool bookkeeping and restart state
    def spool_progress(self) -> dict[str, int]:
        with self._lock:
            try:
                rows = self._connection().execute("SELECT segment, applied_to FROM spool_progress").fetchall()
                self._connection().commit()
            except psycopg.OperationalError as exc:
                self._drop_connection()
                raise DatabaseUnavailable(one_line(exc)) from exc
        return {str(s): int(o) for s, o in rows}

    def forget_segment(self, segment: str) -> None:
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                conn.execute("DELETE FROM spool_progress WHERE segment = %s", (segment,))

    def recent_message_keys(self, window_s: float) -> Iterator[tuple[int, int, int, int]]:
        """(device_id, seq, ts_us, received_at_us) accepted in the last ``window_s``, oldest first."""
        with connect(self.conninfo) as conn:
            cur = conn.execute(
                """SELECT device_id, seq,
                          (extract(epoch FROM ts) * 1e6)::bigint,
                          (extract(epoch FROM received_at) * 1e6)::bigint
                   FROM message_log WHERE received_at > now() - make_interval(secs => %s)
                   ORDER BY received_at""",
                (window_s,),
            )
            yield from cur
