"""The ingest sink: raw MQTT messages or an HTTP body in, a durable batch out.

Callers await until what they handed over is durable: committed to PostgreSQL, or fsynced to the local spool
while PostgreSQL is away (replayed in order when it returns). Only then does the MQTT collector acknowledge and the
HTTP route answer 202, so nothing acknowledged is ever lost. ``on_durable`` (the engine stage) is called with a
batch once it is in PostgreSQL: at once when written directly, when the replayer commits it when it was spooled, so
everything the engine has seen is in the database its restart catches up from.

Flow: decode (wire) -> admit (registry, duplicates) -> bounded queue -> one writer task that merges whatever is
queued into one transaction (group commit) -> resolve the callers. The queue is the backpressure point: MQTT
callers wait for room (the collector then stops acknowledging and the broker's in-flight window throttles it);
HTTP callers get :class:`~sentinel.errors.BackpressureError` at once (503 with Retry-After).

A batch PostgreSQL refuses for a reason of its data (a constraint, a value it cannot hold) is not retried forever:
the writer stores what it can and dead-letters the refused messages with what PostgreSQL said (see
:mod:`sentinel.store.ingest_writer`); the batch is then durable and acknowledged. Only when even those dead letters
are refused, or the store itself is broken (a missing table or privilege), does the batch fail, unacknowledged,
with a loud log line. The spool replay writes through the same writer, so a refused record cannot wedge it either;
should a record be impossible to store even as dead letters, the replayer logs it and keeps retrying with backoff.

The switch back from spooling to direct writes is atomic with respect to new batches. Batches are spooled only on
the event loop, synchronously (:meth:`IngestSink._write`); the replayer, back on the loop after a replay pass, checks
that every spooled record is applied, deletes the segments and switches to direct writes in one synchronous step,
with no await in between. So a batch is either spooled before the check (and replayed, or the check fails and the
replayer goes round again) or written directly after the switch: none is spooled after the last check, and no segment
holding an unreplayed record is deleted. Deleting the segments' ``spool_progress`` rows comes after, off that path;
should it fail, the rows are harmless (segment names are never reused, see :mod:`sentinel.store.spool`) and the next
replay that finishes deletes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sentinel.batch import IngestBatch
from sentinel.collect.mqtt import MqttMessage
from sentinel.errors import BackpressureError, DatabaseUnavailable, StoreError
from sentinel.ingest.admission import Admission, Admitted, Refusal, Sender
from sentinel.ingest.isolate import isolate
from sentinel.ingest.letters import LetterLimiter
from sentinel.observability import IngestMetrics
from sentinel.store.ingest_writer import IngestWriter, Stored
from sentinel.store.spool import Spool
from sentinel.wire import WireLimits, dead_letters, decode_mqtt, encode_telemetry, mqtt_source
from sentinel.wire.deadletter import DeadLetter, Origin, OriginOf, internal_letter
from sentinel.wire.messages import Telemetry

log = logging.getLogger(__name__)
Clock = Callable[[], int]  # wall clock, epoch microseconds


def wall_clock_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class _Origins:
    """Where the items of a (merged) batch came from: one (messages, events, origin) per part, in merge order, so
    an index into the merged batch finds its part and that part's own index."""

    parts: tuple[tuple[int, int, OriginOf | None], ...]

    @classmethod
    def of(cls, batch: IngestBatch, origin: OriginOf | None) -> _Origins:
        return cls(((len(batch.messages), len(batch.events), origin),))

    @classmethod
    def merge(cls, origins: Sequence[_Origins]) -> _Origins:
        return cls(tuple(part for o in origins for part in o.parts))

    def __call__(self, kind: Literal["message", "event"], index: int) -> Origin | None:
        for messages, events, origin in self.parts:
            count = messages if kind == "message" else events
            if index < count:
                return origin(kind, index) if origin is not None else None
            index -= count
        return None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A prepared part of an MQTT batch, with what its metrics are to count once the part is kept."""

    batch: IngestBatch
    origins: _Origins
    topic_invalid: Counter[str] = field(default_factory=Counter)


@dataclass
class _Pending:
    batch: IngestBatch
    done: asyncio.Future[None]
    started: float
    origins: _Origins


class IngestSink:
    def __init__(
        self,
        writer: IngestWriter,
        spool: Spool,
        admission: Admission,
        metrics: IngestMetrics,
        *,
        queue_max_batches: int = 8,
        limits: WireLimits | None = None,
        clock: Clock = wall_clock_us,
        on_durable: Callable[[IngestBatch], None] | None = None,
        replay_backoff_s: tuple[float, float] = (0.2, 5.0),
        letters: LetterLimiter | None = None,
    ) -> None:
        self.writer = writer
        self.spool = spool
        self.admission = admission
        self.metrics = metrics
        self.limits = limits or WireLimits()
        self.clock = clock
        self.on_durable = on_durable
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_max_batches)
        self._spooling = bool(spool)
        self._tasks: list[asyncio.Task[None]] = []
        self._replayer: asyncio.Task[None] | None = None
        self._forgetting: set[asyncio.Task[None]] = set()
        self._backoff = replay_backoff_s
        self._conflicts_counted = 0
        self.letters = letters or LetterLimiter()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._write_loop(), name="ingest-writer"))
        if self._spooling:
            self._start_replayer()

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        await self._queue.join()
        for task in [*self._tasks, *([self._replayer] if self._replayer else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in list(self._forgetting):
            await task  # a finished replay's bookkeeping (it logs its own failure): not under a closing writer
        self._tasks.clear()
        self._replayer = None
        self.writer.close()

    @property
    def spooling(self) -> bool:
        return self._spooling

    # ------------------------------------------------------------------ MQTT
    async def mqtt(self, messages: list[MqttMessage]) -> None:
        """The MQTT collector's sink: returns once every message of the batch is durable (or dead-lettered)."""
        if not messages:
            return
        self.metrics.received.labels("mqtt").inc(len(messages))
        batch, origins = self.prepare(messages)
        await self._durable(batch, wait_for_room=True, origins=origins)

    def prepare(self, messages: list[MqttMessage]) -> tuple[IngestBatch, _Origins]:
        """Decode and admit MQTT messages into one batch: their readings, events and dead letters. Total: bad
        bytes become dead letters with a reason, and a message whose processing raises is isolated and
        dead-lettered (code ``internal``); nothing escapes. The duplicate filter holds the batch's keys as pending
        until the batch is committed or aborted."""
        now_us = self.clock()
        parts = isolate(messages, lambda part: self._prepare(part, now_us), self._internal, self.admission.dedup)
        # Counted from the parts kept only: a part that raised is prepared again, its topics seen twice.
        for part in parts:
            for reason, count in part.topic_invalid.items():
                self.metrics.topic_invalid.labels(reason).inc(count)
        batch = IngestBatch.merge([p.batch for p in parts]) if len(parts) != 1 else parts[0].batch
        return batch, _Origins.merge([p.origins for p in parts])

    def _internal(self, message: MqttMessage, exc: Exception) -> _Prepared:
        """A message whose processing raised: set aside as a dead letter (code ``internal``) so the rest goes on."""
        log.error(
            "MQTT message on %r set aside as a dead letter: processing raised %s",
            message.topic,
            type(exc).__name__,
            exc_info=exc,
        )
        self.metrics.internal_errors.inc()
        received = datetime.fromtimestamp(message.received_at, UTC)
        letter = internal_letter(message.payload, mqtt_source(message.topic), received, exc)
        batch = IngestBatch.of_dead_letters(int(message.received_at * 1_000_000), [letter])
        return _Prepared(batch, _Origins.of(batch, None))

    def _prepare(self, messages: list[MqttMessage], now_us: int) -> _Prepared:
        """Decode and admit MQTT messages into one batch (dead letters included). Pure but for the duplicate
        filter's pending keys, which :func:`isolate` rolls back should this raise."""
        received_us = int(messages[0].received_at * 1_000_000)
        received = datetime.fromtimestamp(received_us / 1e6, UTC)
        telemetry: list[Telemetry] = []
        senders: list[Sender] = []
        raws: list[bytes | None] = []
        indices: list[int | None] = []
        letters: list[DeadLetter] = []
        extra: list[Admitted] = []
        senders_by_topic: dict[str, Sender | Refusal] = {}
        topic_invalid: Counter[str] = Counter()
        for m in messages:
            source = mqtt_source(m.topic)
            decoded = decode_mqtt(m.topic, m.payload, now_us=now_us, limits=self.limits)
            if decoded.rejected:
                letters += dead_letters(decoded.rejected, source, received)
            info = decoded.topic
            if info is None:
                topic_invalid[decoded.topic_reason or "unknown"] += 1
                continue
            sender = senders_by_topic.get(m.topic)
            if sender is None:
                sender = senders_by_topic[m.topic] = self.admission.sender_for_topic(info, source)
            if isinstance(sender, Refusal):  # a gateway topic whose gateway may not write for the topic's site
                letters.append(sender.letter(m.payload, source, received))
                continue
            if info.gateway is not None:
                refused = {r.index for r in decoded.rejected}
                good = [i for i in range(len(decoded.telemetry) + len(refused)) if i not in refused]
                indices += good[: len(decoded.telemetry)]
                raws += [None] * len(decoded.telemetry)
            else:
                indices += [None] * len(decoded.telemetry)
                raws += [m.payload] * len(decoded.telemetry)
            telemetry += decoded.telemetry
            senders += [sender] * len(decoded.telemetry)
            if decoded.events or decoded.statuses:
                extra.append(
                    self.admission.events(decoded.events, decoded.statuses, sender, received_us, raw=m.payload)
                )

        def raw_of(k: int) -> bytes:
            raw = raws[k]
            return raw if raw is not None else encode_telemetry(telemetry[k])

        admitted = self.admission.telemetry(telemetry, senders, received_us, raw_of=raw_of, indices=indices)
        parts = [admitted, *extra]
        batch = IngestBatch.merge([a.batch for a in parts])
        batch.dead_letters = letters + batch.dead_letters
        origins = _Origins.merge([_Origins.of(a.batch, a.origin) for a in parts])
        return _Prepared(batch, origins, topic_invalid)

    # ------------------------------------------------------------------ HTTP
    async def http(self, admitted: Admitted, received: int) -> None:
        """Make an admitted HTTP body of ``received`` items durable; BackpressureError when the queue is full
        (answer 503: the items count as received, the client sends them again)."""
        self.metrics.received.labels("http").inc(received)
        await self._durable(admitted.batch, wait_for_room=False, origins=_Origins.of(admitted.batch, admitted.origin))

    async def refuse(self, letters: Sequence[DeadLetter], transport: str = "http") -> None:
        """Store dead letters of a payload refused as a whole (queue full: they are dropped with a log line)."""
        self.metrics.received.labels(transport).inc(len(letters))
        try:
            await self._durable(IngestBatch.of_dead_letters(self.clock(), letters), wait_for_room=False)
        except BackpressureError:
            log.warning("ingest queue full: %d dead letter(s) not stored", len(letters))

    # ------------------------------------------------------------------ the writer
    async def _durable(self, batch: IngestBatch, *, wait_for_room: bool, origins: _Origins | None = None) -> None:
        origins = origins or _Origins.of(batch, None)
        if batch.dead_letters or self.letters.owing:
            received = datetime.fromtimestamp(batch.received_at_us / 1e6, UTC)
            batch.dead_letters, suppressed = self.letters.admit(batch.dead_letters, received)
            for code, count in suppressed.items():
                self.metrics.dead_letters_suppressed.labels(code).inc(count)
                self.metrics.rejected.labels(code).inc(count)
        pending = _Pending(batch, asyncio.get_running_loop().create_future(), time.perf_counter(), origins)
        if wait_for_room:
            await self._queue.put(pending)
        else:
            try:
                self._queue.put_nowait(pending)
            except asyncio.QueueFull:
                self._abort(batch)
                self.metrics.backpressure.inc()
                raise BackpressureError("the ingest queue", retry_after_s=1.0) from None
        self.metrics.queue_depth.set(self._queue.qsize())
        await pending.done

    def _abort(self, batch: IngestBatch) -> None:
        m = batch.messages
        self.admission.dedup.abort(zip(m.device_id.tolist(), m.seq.tolist(), m.ts_us.tolist(), strict=True))

    async def _write_loop(self) -> None:
        while True:
            group = [await self._queue.get()]
            while not self._queue.empty() and len(group) < 64:
                group.append(self._queue.get_nowait())
            self.metrics.queue_depth.set(self._queue.qsize())
            merged = IngestBatch.merge([p.batch for p in group]) if len(group) > 1 else group[0].batch
            origins = _Origins.merge([p.origins for p in group]) if len(group) > 1 else group[0].origins
            try:
                stored = await self._write(merged, origins)
            except Exception as exc:
                log.error("ingest batch not stored (not acknowledged; it will be sent again): %s", exc)
                for p in group:
                    self._abort(p.batch)
                    if not p.done.done():
                        p.done.set_exception(exc)
            else:
                self._committed(merged, stored, group)
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _write(self, batch: IngestBatch, origins: _Origins) -> Stored:
        """Write directly (what was stored: refused parts dead-lettered) or, while the database is away, spool."""
        if not self._spooling:
            started = time.perf_counter()
            try:
                stored = await asyncio.to_thread(self.writer.write, batch, None, origins)
                self.metrics.db_write.observe(time.perf_counter() - started)
                return stored
            except DatabaseUnavailable as exc:
                log.warning("database unavailable (%s): spooling batches locally until it returns", exc)
                self._spooling = True
                self._start_replayer()
        # Synchronous on the loop on purpose: the replayer flips back to direct writes on this same thread, so an
        # append can never race with the decision that the spool is empty.
        self.spool.append(batch)
        self.metrics.spooled.inc()
        self.metrics.spool_pending.set(1)
        return Stored(batch, spooled=True)

    def _committed(self, batch: IngestBatch, stored: Stored, group: list[_Pending]) -> None:
        # Every key of the batch is settled: stored, or dead-lettered (then a redelivery is a duplicate too).
        m = batch.messages
        self.admission.dedup.commit(
            zip(m.device_id.tolist(), m.seq.tolist(), m.ts_us.tolist(), strict=True), batch.received_at_us
        )
        batch = stored.batch
        batch.commit_seq = stored.commit_seq
        self.metrics.stored_messages.inc(len(batch.messages))
        self.metrics.stored_readings.inc(len(batch.readings))
        self.metrics.duplicates.inc(batch.duplicates)
        conflicts = self.admission.dedup.conflicts
        self.metrics.seq_conflicts.inc(conflicts - self._conflicts_counted)
        self._conflicts_counted = conflicts
        for letter in batch.dead_letters:
            self.metrics.rejected.labels(letter.code).inc()
        if stored.refused:
            self.metrics.store_refused_batches.inc()
        now = time.perf_counter()
        for p in group:
            self.metrics.batch_latency.observe(now - p.started)
            if not p.done.done():
                p.done.set_result(None)
        if self.on_durable is not None and not stored.spooled:  # a spooled batch is handed on when replayed
            self.on_durable(batch)

    # ------------------------------------------------------------------ spool replay
    def _start_replayer(self) -> None:
        if self._replayer is None or self._replayer.done():
            self._replayer = asyncio.create_task(self._replay_loop(), name="spool-replayer")

    async def _replay_loop(self) -> None:
        delay, cap = self._backoff
        while True:
            try:
                applied = await asyncio.to_thread(self.writer.spool_progress)
                replayed_batches: list[IngestBatch] = []
                try:
                    progress = await asyncio.to_thread(self._replay_available, applied, replayed_batches)
                finally:
                    # What reached PostgreSQL goes on to the engine now, in commit order, on this (the loop's) thread.
                    for stored_batch in replayed_batches:
                        if self.on_durable is not None:
                            self.on_durable(stored_batch)
            except DatabaseUnavailable:
                await asyncio.sleep(delay)
                delay = min(cap, delay * 2)
                continue
            except Exception as exc:
                # A record the database refuses even as dead letters, or a broken store: loud, and retried (the
                # spool keeps the record; what comes after it waits behind it, in order).
                log.error("spool replay stalled (retrying in %.1f s; the spool keeps everything): %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(cap, delay * 2)
                continue
            delay = self._backoff[0]
            # Back on the loop thread, where batches are spooled: from this check to the switch below nothing
            # awaits, so no batch can be spooled in between and be left behind (see the module docstring).
            if self._unapplied(progress):
                if progress == applied:  # nothing replayed, yet something left: do not spin on it
                    await asyncio.sleep(delay)
                continue
            try:
                replayed = self.spool.clear()  # every record in them is applied; their names are never reused
            except StoreError as exc:
                log.error("spool replayed but not deleted (retrying in %.1f s): %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(cap, delay * 2)
                continue
            self._spooling = False
            self.metrics.spool_pending.set(0)
            log.info("spool replayed; writing to the database directly again")
            self._forget_later([*progress, *replayed])
            return  # in this same step: should the database go away again, _write starts a new replayer

    def _replay_available(self, applied: dict[str, int], committed: list[IngestBatch]) -> dict[str, int]:
        """Write every spooled record not yet applied, appending each as stored to ``committed``; return segment ->
        offset applied to."""
        progress = dict(applied)
        for segment, offset, batch in self.spool.records(applied):
            stored = self.writer.write(batch, spool_mark=(segment, offset))
            stored.batch.commit_seq = stored.commit_seq
            committed.append(stored.batch)
            progress[segment] = offset
            if stored.refused:  # the rest of the record was counted when it was spooled
                self.metrics.store_refused_batches.inc()
                for letter in stored.refused:
                    self.metrics.rejected.labels(letter.code).inc()
        return progress

    def _unapplied(self, progress: dict[str, int]) -> bool:
        return any(path.stat().st_size > progress.get(path.name, 0) for path in self.spool.segments())

    def _forget_later(self, segments: Iterable[str]) -> None:
        """Delete the progress rows of deleted segments (and of any deleted earlier whose rows outlived them)."""
        task = asyncio.create_task(self._forget(sorted(set(segments))), name="spool-forget")
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)

    async def _forget(self, segments: list[str]) -> None:
        try:
            await asyncio.to_thread(self._forget_rows, segments)
        except Exception as exc:
            log.warning(
                "progress rows of %d replayed spool segment(s) not deleted (harmless: segment names are never "
                "reused; the next replay that finishes deletes them): %s",
                len(segments),
                exc,
            )

    def _forget_rows(self, segments: list[str]) -> None:
        for segment in segments:
            self.writer.forget_segment(segment)
