"""One durable write of an IngestBatch: readings and message keys by binary COPY, events and dead letters by
executemany, all in one transaction (optionally with the spool position it replays).

Synchronous psycopg on purpose: the ingest sink runs it in a worker thread, so the event loop keeps reading MQTT
and HTTP while PostgreSQL works, and COPY needs no async plumbing.

Failures are told apart by what PostgreSQL says (SQLSTATE), because the right answer differs:

- the database is away (connection lost or refused, shutting down, out of disk, a deadlock...):
  :class:`~sentinel.errors.DatabaseUnavailable`; nothing was written, the caller retries later (the sink spools).
- the *data* is at fault (class 22 data exception, class 23 integrity constraint violation, 54000 a value too large,
  or psycopg refusing a value before sending it, such as a NUL byte in text): retrying would fail forever, so the
  batch is cut into its parts (each message with its readings, each event, each dead letter) and bisected inside
  one transaction, a savepoint per attempt. Everything PostgreSQL takes is stored; each part it refuses becomes a
  dead letter (code :data:`~sentinel.wire.deadletter.STORE_REFUSED`) saying which message and what PostgreSQL
  said, committed in the same transaction (with the spool position, so a replay is still exactly-once). When even
  that fails (a dead letter refused), nothing is written and :class:`~sentinel.errors.StoreError` is raised.
- anything else (an undefined table, a missing privilege, a bug in a statement): :class:`StoreError`. Such errors
  fail every batch alike; dead-lettering would empty the whole stream into ``dead_letters``, so nothing is written
  and the caller must not acknowledge.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

import msgspec
import numpy as np
import psycopg

from sentinel.batch import IngestBatch
from sentinel.errors import DatabaseUnavailable, StoreError
from sentinel.store.copy import binary_copy
from sentinel.store.database import connect, one_line
from sentinel.store.readings import ReadingsWriter
from sentinel.store.refusals import BatchParts, is_data_error, nul_safe, postgres_said
from sentinel.wire.deadletter import STORE_REFUSED, DeadLetter, OriginOf, device_source
from sentinel.wire.messages import format_ts

log = logging.getLogger(__name__)

MESSAGE_LOG_COPY = "COPY message_log (device_id, seq, ts, received_at, commit_seq) FROM STDIN (FORMAT BINARY)"

_LOGGED_LETTERS = 10  # a constraint refusing every message must not write a log line per message


@dataclass(frozen=True, slots=True)
class Stored:
    """What one write committed: ``batch`` as stored (parts the database refused left out, their dead letters
    added) and ``refused``, those new dead letters (empty when the database took everything)."""

    batch: IngestBatch
    refused: list[DeadLetter] = field(default_factory=list)
    spooled: bool = False  # fsynced to the local spool, not (yet) in PostgreSQL
    commit_seq: int = 0  # ingest_commit_seq of the message_log rows written (0: none written)


class IngestWriter:
    def __init__(self, conninfo: str, dialect: str) -> None:
        self.conninfo = conninfo
        self.readings = ReadingsWriter(dialect)
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._commit_seq = 0  # the newest ingest_commit_seq taken by the write in progress
        # Devices known to have a device_heard row (loaded at the first write); a batch inserts rows only for the
        # others, so after the first messages of each device this costs one set difference per batch.
        self._heard: set[int] | None = None
        self._heard_now: set[int] = set()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.conninfo)
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def write(
        self, batch: IngestBatch, spool_mark: tuple[str, int] | None = None, origin: OriginOf | None = None
    ) -> Stored:
        """Commit the batch, dead-lettering the parts PostgreSQL refuses for a reason of their data (``origin``
        says where an item came from, for its dead letter); or raise DatabaseUnavailable (connection trouble: retry
        later) or StoreError (nothing written: the store is broken, or even the dead letters were refused)."""
        with self._lock:
            self._commit_seq = 0
            try:
                conn = self._connection()
                try:
                    with conn.transaction():
                        self._write(conn, batch)
                        self._mark(conn, spool_mark)
                    stored = Stored(batch)
                    if self._heard is not None:
                        self._heard |= self._heard_now  # committed (after an isolated write, the next batch retries)
                except psycopg.Error as exc:
                    if not is_data_error(exc) or conn.closed or conn.broken:
                        raise
                    stored = self._isolate(conn, batch, spool_mark, origin, exc)
                self.readings.committed()
                if self._commit_seq:
                    stored = Stored(stored.batch, stored.refused, stored.spooled, self._commit_seq)
                return stored
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._drop_connection()
                if is_data_error(exc):  # 54000 on a connection that broke meanwhile
                    raise StoreError(f"writing an ingest batch failed: {postgres_said(exc)}") from exc
                raise DatabaseUnavailable(one_line(exc)) from exc
            except psycopg.Error as exc:
                self._drop_connection()
                raise StoreError(f"writing an ingest batch failed: {postgres_said(exc)}") from exc

    @staticmethod
    def _mark(conn: psycopg.Connection[Any], spool_mark: tuple[str, int] | None) -> None:
        if spool_mark is not None:
            conn.execute(
                """INSERT INTO spool_progress (segment, applied_to) VALUES (%s, %s)
                   ON CONFLICT (segment) DO UPDATE SET applied_to = excluded.applied_to""",
                spool_mark,
            )

    # ------------------------------------------------------------------ a batch the database refused for its data
    def _isolate(
        self,
        conn: psycopg.Connection[Any],
        batch: IngestBatch,
        spool_mark: tuple[str, int] | None,
        origin: OriginOf | None,
        first: psycopg.Error,
    ) -> Stored:
        parts = BatchParts(batch)
        log.warning(
            "the database refused an ingest batch of %d part(s) for a reason of its data (%s): finding the refused "
            "part(s); the rest is stored, they are dead-lettered",
            len(parts),
            postgres_said(first),
        )
        refused: list[tuple[int, psycopg.Error]] = []
        with conn.transaction():
            everything = list(range(len(parts)))
            if len(everything) == 1:
                refused.append((0, first))  # the whole batch failed already: no need to try it again
            else:
                self._bisect(conn, parts, everything, refused)
            if not refused:
                log.warning("the refused ingest batch was stored whole on a second attempt (%s)", postgres_said(first))
                self._mark(conn, spool_mark)
                return Stored(batch)
            letters_refused = [p for p, _exc in refused if parts.kinds[p][0] == "dead_letter"]
            if letters_refused:
                which = [batch.dead_letters[parts.kinds[p][1]] for p in letters_refused]
                self._blocked(which, dict(refused)[letters_refused[0]], "dead letter(s) of the batch itself")
            letters = self._letters(conn, parts, refused, origin)
            try:
                with conn.transaction():
                    self._write(conn, IngestBatch.of_dead_letters(batch.received_at_us, letters))
            except psycopg.Error as exc:
                if not is_data_error(exc):
                    raise
                self._blocked(letters, exc, "the dead letters of its refused part(s)")
            self._mark(conn, spool_mark)
        bad = {part for part, _exc in refused}
        stored = parts.select([p for p in range(len(parts)) if p not in bad])
        stored.dead_letters += letters
        stored.duplicates = batch.duplicates
        for letter in letters[:_LOGGED_LETTERS]:
            log.warning("dead-lettered (the database refused it): %s %s", letter.source, letter.message)
        if len(letters) > _LOGGED_LETTERS:
            log.warning("... and %d more dead-lettered (see dead_letters)", len(letters) - _LOGGED_LETTERS)
        return Stored(stored, letters)

    @staticmethod
    def _blocked(letters: list[DeadLetter], exc: psycopg.Error, what: str) -> NoReturn:
        """Even dead-lettering failed: say so loudly and raise (nothing of the batch is written)."""
        log.error(
            "INGEST BLOCKED: the database refused %s (%s); nothing of the batch is stored and it must not be "
            "acknowledged. Refused: %s",
            what,
            postgres_said(exc),
            "; ".join(f"{d.source} {d.message}" for d in letters),
        )
        raise StoreError(f"the database refused {what} of an ingest batch: {postgres_said(exc)}") from exc

    def _bisect(
        self,
        conn: psycopg.Connection[Any],
        parts: BatchParts,
        ids: list[int],
        refused: list[tuple[int, psycopg.Error]],
    ) -> None:
        """``ids`` failed together: write each half under its own savepoint, splitting again what fails."""
        mid = len(ids) // 2
        for half in (ids[:mid], ids[mid:]):
            try:
                with conn.transaction():
                    self._write(conn, parts.select(half))
            except psycopg.Error as exc:
                if not is_data_error(exc) or conn.broken:
                    raise
                if len(half) == 1:
                    refused.append((half[0], exc))
                else:
                    self._bisect(conn, parts, half, refused)

    def _letters(
        self,
        conn: psycopg.Connection[Any],
        parts: BatchParts,
        refused: list[tuple[int, psycopg.Error]],
        origin: OriginOf | None,
    ) -> list[DeadLetter]:
        batch = parts.batch
        devices, metrics = self._names(conn, parts, [p for p, _exc in refused])
        received = datetime.fromtimestamp(batch.received_at_us / 1e6, UTC)
        letters: list[DeadLetter] = []
        for part, exc in refused:
            kind, index = parts.kinds[part]
            said = postgres_said(exc)
            where = None
            if kind == "event":
                where = origin("event", index) if origin is not None else None
                e = batch.events[index]
                device = devices.get(e.device_id, f"#{e.device_id}")
                what = f"this {'status' if e.topic_type == 'status' else 'event'} ({e.name!r} of device {device!r})"
                stored_fields: dict[str, object] = {
                    "device": device,
                    "ts": format_ts(e.ts_us),
                    "topic_type": e.topic_type,  # as the device_events row would have held it
                    "name": e.name,
                    "value": e.value,
                    "state": e.state,
                    "note": e.note,
                }
            else:
                readings = parts.readings_of(part)
                if kind == "message":
                    where = origin("message", index) if origin is not None else None
                    m = batch.messages
                    device_id, ts_us, seq = int(m.device_id[index]), int(m.ts_us[index]), int(m.seq[index])
                else:
                    device_id, ts_us, seq = int(readings.device_id[0]), int(readings.ts_us[0]), -1
                device = devices.get(device_id, f"#{device_id}")
                what = (
                    f"this message (device {device!r}, seq {seq}, {len(readings)} reading(s))"
                    if kind == "message"
                    else f"{len(readings)} reading(s) of device {device!r} at {format_ts(ts_us)}"
                )
                stored_fields = {"device": device, "ts": format_ts(ts_us)}
                if kind == "message":
                    stored_fields["seq"] = seq
                stored_fields["metrics"] = {
                    metrics.get(mid, f"#{mid}"): value
                    for mid, value in zip(readings.metric_id.tolist(), readings.value.tolist(), strict=True)
                }
            reason = f"the database refused to store {what}; nothing of it was stored: {said}"
            if where is None:
                raw = msgspec.json.encode(stored_fields)
                reason += " (raw: the fields as admitted; the bytes received were not kept)"
                letters.append(DeadLetter(raw, device_source(device), received, reason, "", STORE_REFUSED))
            else:
                letters.append(
                    DeadLetter(
                        where.raw, where.source, where.received_at, reason, where.path, STORE_REFUSED, where.index
                    )
                )
        return letters

    @staticmethod
    def _names(
        conn: psycopg.Connection[Any], parts: BatchParts, refused: list[int]
    ) -> tuple[dict[int, str], dict[int, str]]:
        """Device and metric names of the refused parts, for their dead letters."""
        batch = parts.batch
        device_ids: set[int] = set()
        metric_ids: set[int] = set()
        for part in refused:
            kind, index = parts.kinds[part]
            if kind == "event":
                device_ids.add(batch.events[index].device_id)
            else:
                readings = parts.readings_of(part)
                device_ids.update(readings.device_id.tolist())
                metric_ids.update(readings.metric_id.tolist())
                if kind == "message":
                    device_ids.add(int(batch.messages.device_id[index]))
        devices = dict(
            conn.execute(
                "SELECT device_id, device FROM devices WHERE device_id = ANY(%s)", (sorted(device_ids),)
            ).fetchall()
        )
        metrics = dict(
            conn.execute(
                "SELECT metric_id, metric FROM metrics WHERE metric_id = ANY(%s)", (sorted(metric_ids),)
            ).fetchall()
        )
        return devices, metrics

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
            # One value per transaction attempt; a sequence is not rolled back, so a retried part takes a newer one.
            row = conn.execute("SELECT nextval('ingest_commit_seq')").fetchone()
            assert row is not None
            self._commit_seq = int(row[0])
            stream = binary_copy(
                [
                    ("int4", m.device_id),
                    ("int8", m.seq),
                    ("timestamptz", m.ts_us),
                    ("timestamptz", np.full(len(m), batch.received_at_us, dtype=np.int64)),
                    ("int8", np.full(len(m), self._commit_seq, dtype=np.int64)),
                ]
            )
            with conn.cursor() as cur, cur.copy(MESSAGE_LOG_COPY) as copy:
                copy.write(stream)
            self._first_heard(conn, m.device_id, batch.received_at_us)
        with conn.cursor() as cur:
            if batch.events:
                cur.executemany(
                    # Idempotent by (device, ts, topic type, name): a retained status redelivered on every
                    # re-subscription, or an event sent twice, is stored once (migration 0013).
                    """INSERT INTO device_events (ts, device_id, topic_type, name, value, state, note, received_at)
                       VALUES (to_timestamp(%s / 1e6), %s, %s, %s, %s, %s, %s, to_timestamp(%s / 1e6))
                       ON CONFLICT (device_id, ts, topic_type, name) DO NOTHING""",
                    [
                        (e.ts_us, e.device_id, e.topic_type, e.name, e.value, e.state, e.note, batch.received_at_us)
                        for e in batch.events
                    ],
                )
            if batch.dead_letters:
                cur.executemany(
                    """INSERT INTO dead_letters (received_at, source, reason, path, raw, code, size, sha256)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
                    [
                        (
                            d.received_at,
                            nul_safe(d.source),
                            nul_safe(d.reason),
                            nul_safe(d.path),
                            d.raw,
                            nul_safe(d.code),
                            d.size if d.size is not None else len(d.raw),
                            d.sha256 if d.sha256 is not None else hashlib.sha256(d.raw).digest(),
                        )
                        for d in batch.dead_letters
                    ],
                )

    def _first_heard(
        self, conn: psycopg.Connection[Any], device_ids: np.ndarray[Any, Any], received_at_us: int
    ) -> None:
        """A device_heard row for each device of the batch heard from for the first time."""
        if self._heard is None:
            self._heard = {int(r[0]) for r in conn.execute("SELECT device_id FROM device_heard").fetchall()}
        self._heard_now = {int(d) for d in np.unique(device_ids)} - self._heard
        if self._heard_now:
            conn.execute(
                """INSERT INTO device_heard (device_id, first_heard_at)
                   SELECT unnest(%s::int4[]), to_timestamp(%s / 1e6) ON CONFLICT (device_id) DO NOTHING""",
                (sorted(self._heard_now), received_at_us),
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
