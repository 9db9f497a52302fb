"""The engine runner: durable batches → :class:`~sentinel.engine.Engine` → the alert lifecycle, surviving restarts.

The runner knows nothing of alerts: the composition root (:mod:`sentinel.app`) hands it ``write_transitions``, a
callback that writes one batch's transitions inside the runner's transaction (the alert lifecycle plus flood and
chatter detection). Its SQL lives in :mod:`sentinel.store.checkpoints`.

Design (why nothing is raised twice and no transition is lost):

1. Ingest commits a batch (readings + ``message_log`` rows stamped with the batch's ``received_at``) *before* the
   engine sees it (``IngestSink(on_durable=runner.on_durable)``). So the database always holds every reading the
   engine has seen, and possibly some it has not yet.
2. The runner keeps a *position*: the commit stamp (``message_log.commit_seq``, one per ingest transaction, in
   commit order) and ``received_at`` (µs) of the newest batch whose transitions are written. It saves ``(position,
   engine snapshot, device order)`` in ``engine_checkpoint`` every ``checkpoint_every_s`` and on a clean stop, in
   the same transaction as that batch's alert writes.
3. On start the runner builds the engine from the registry (devices table: class, site, sector, expected interval,
   attrs = setpoints/baselines; ``sites.attrs`` = site overrides; ``metrics`` names = the engine catalogue's ids),
   restores the snapshot when the device order still matches, then *catches up*: it re-reads from the database every
   reading of a message committed after the position (``message_log ⋈ readings``; rows older than commit stamps:
   received after it), batch by batch in commit order, and feeds it through the engine and the lifecycle.
   Transitions between the checkpoint and the crash are produced again with the same keys and skipped
   (:mod:`.lifecycle`); the ones the crash lost are written now.
   Without a usable snapshot (first start, registry reordered) it replays the last ``rebuild_window_s`` instead;
   a raise for a subject that already has an open alert then merges into it.
4. While running, ``on_durable`` (sync, on the ingest loop) only enqueues; a worker task evaluates. When the bounded
   queue is full the batch is dropped from the queue and the worker catches up from the database, as in 3. A batch
   is handed on only once it is in PostgreSQL (a spooled one when the spool replay commits it), and a queued batch
   the last catch-up already read from the database is skipped, so none is evaluated twice.

Devices whose class no pack defines, or that lack an attribute a rule needs, are refused once (logged) and not
evaluated until the next start; devices registered while running are added when their first reading arrives.

Staleness is ticked on the wall clock every ``tick_s``; a tick's transitions carry the tick time, so after a restart
they merge into the open comm alert rather than opening a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from sentinel.batch import IngestBatch, ReadingBatch
from sentinel.engine.devices import DeviceSpec
from sentinel.engine.engine import Engine
from sentinel.engine.loader import load_rules
from sentinel.engine.model import RuleSet
from sentinel.engine.transitions import Transition
from sentinel.errors import SentinelError
from sentinel.store import checkpoints
from sentinel.store.database import connect

log = logging.getLogger(__name__)
WallClock = Callable[[], datetime]

# Writes one batch's transitions (the caller, the runner, owns the transaction): connection, transitions, the rules
# they came from, the wall-clock time of the write.
WriteTransitions = Callable[[psycopg.Connection[Any], list[Transition], RuleSet, datetime, Engine], None]


def _ignore(
    conn: psycopg.Connection[Any], records: list[Transition], rules: RuleSet, now: datetime, engine: Engine
) -> None:
    return None


def wall_now() -> datetime:
    return datetime.now(UTC)


class EngineRunner:
    def __init__(
        self,
        conninfo: str,
        rules: RuleSet | None = None,
        *,
        lateness_s: float = 300.0,
        tick_s: float = 5.0,
        checkpoint_every_s: float = 30.0,
        rebuild_window_s: float = 3600.0,
        queue_max_batches: int = 64,
        clock: WallClock = wall_now,
        models_dir: Path | None = None,
        rewind_max_readings: int = 2_000_000,
        write_transitions: WriteTransitions = _ignore,
    ) -> None:
        self.conninfo = conninfo
        self.rewind_max_readings = rewind_max_readings
        self.write_transitions = write_transitions
        self.rules = rules or load_rules()
        self.lateness_s = lateness_s
        self.tick_s = tick_s
        self.checkpoint_every_s = checkpoint_every_s
        self.rebuild_window_s = rebuild_window_s
        self.clock = clock
        self.models_dir = models_dir  # anomaly rules' model files; None keeps them off
        self.engine = self._engine({})
        self.position_us = 0
        self.position_seq: int | None = None  # commit order (message_log.commit_seq); None: catch up by arrival
        # False while the engine may be ahead of what is written (mid-batch, or a write failed): no checkpoint then.
        self._consistent = False
        self.device_map = np.full(1, -1, dtype=np.int64)  # DB device_id → engine index (ids start at 1)
        self.metric_map = np.full(1, -1, dtype=np.int64)  # DB metric_id → engine metric index
        self.refused: set[int] = set()
        self._queue: asyncio.Queue[IngestBatch] = asyncio.Queue(maxsize=queue_max_batches)
        self._behind = False
        self._saved_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def _engine(self, overrides: dict[str, Any]) -> Engine:
        return Engine(
            self.rules,
            site_overrides=overrides,
            lateness_s=self.lateness_s,
            models_dir=self.models_dir,
            rewind_max_readings=self.rewind_max_readings,
        )

    # -- registry → engine ------------------------------------------------------------------------------------
    def _specs(self, conn: psycopg.Connection[Any]) -> tuple[dict[str, tuple[int, DeviceSpec]], dict[str, Any]]:
        rows = checkpoints.device_rows(conn)
        specs = {
            r[1]: (int(r[0]), DeviceSpec(r[1], r[2], r[3], r[4], float(r[5]), _numbers(r[6])))
            for r in rows
            if r[2] in self.rules.classes
        }
        overrides = {sid: _numbers(attrs) for sid, attrs in checkpoints.site_attrs(conn)}
        return specs, overrides

    def _map(self, db_id: int, name: str) -> None:
        if db_id >= len(self.device_map):
            grown = np.full(max(db_id + 1, 2 * len(self.device_map)), -1, dtype=np.int64)
            grown[: len(self.device_map)] = self.device_map
            self.device_map = grown
        self.device_map[db_id] = self.engine.device_index(name)

    def _add(self, specs: list[tuple[int, DeviceSpec]]) -> None:
        todo = [(db_id, spec) for db_id, spec in specs if db_id not in self.refused]
        if not todo:
            return
        try:  # all at once: adding grows every rule's arrays, so one by one would be quadratic
            self.engine.add_devices([spec for _, spec in todo])
        except SentinelError:
            added = []
            refused: list[str] = []
            for db_id, spec in todo:  # the engine refuses a whole add untouched; find the devices it cannot judge
                try:
                    self.engine.add_devices([spec])
                except SentinelError as exc:
                    refused.append(f"{spec.id} ({exc})")
                    self.refused.add(db_id)
                else:
                    added.append((db_id, spec))
            log.warning("%d devices are not evaluated, e.g. %s", len(refused), "; ".join(refused[:3]))
            todo = added
        for db_id, spec in todo:
            self._map(db_id, spec.id)

    def load(self, conn: psycopg.Connection[Any]) -> None:
        """Build the engine from the registry and the checkpoint (see the module docstring, step 3)."""
        self._consistent = False
        self._load(conn)
        # (Re)start and recovery from a database outage: silence from before now is not the devices' fault.
        self.engine.listening_since(int(self.clock().timestamp() * 1e6))
        self._consistent = True

    def _load(self, conn: psycopg.Connection[Any]) -> None:
        specs, overrides = self._specs(conn)
        metric_rows = checkpoints.metric_rows(conn)
        self.metric_map = np.full(max((int(m) for m, _ in metric_rows), default=0) + 1, -1, dtype=np.int64)
        for mid, name in metric_rows:
            try:
                self.metric_map[int(mid)] = self.engine.metric_index(name)
            except (KeyError, SentinelError):
                continue
        self.engine = self._engine(overrides)
        self.device_map = np.full(1, -1, dtype=np.int64)
        saved = checkpoints.load_checkpoint(conn)
        order = saved.devices if saved else []
        if saved and all(name in specs for name in order):
            self._add([specs[name] for name in order])
            try:
                self.engine.restore(saved.snapshot)
                self.position_us = saved.position_us
                self.position_seq = saved.position_seq
            except Exception as exc:  # a snapshot of other rules: rebuild from recent readings instead
                log.warning("engine snapshot not usable (%s): rebuilding from recent readings", exc)
                return self._fresh(specs, overrides)
            self._add([v for k, v in specs.items() if k not in set(order)])
            return None
        return self._fresh(specs, overrides)

    def _fresh(self, specs: dict[str, tuple[int, DeviceSpec]], overrides: dict[str, Any]) -> None:
        self.engine = self._engine(overrides)
        self.device_map = np.full(1, -1, dtype=np.int64)
        self.refused.clear()
        self._add(list(specs.values()))
        self.position_us = int((self.clock().timestamp() - self.rebuild_window_s) * 1e6)
        self.position_seq = None

    # -- evaluation ---------------------------------------------------------------------------------------------
    def evaluate(
        self, conn: psycopg.Connection[Any], readings: ReadingBatch, received_at_us: int, commit_seq: int = 0
    ) -> int:
        """Feed one durable batch; write its transitions (and maybe a checkpoint) in one transaction."""
        self._consistent = False
        position = (max(self.position_us, received_at_us), commit_seq)
        dev_ids = readings.device_id.astype(np.int64)
        if self._unseen(dev_ids):  # a device registered since: add it (others stay refused, asked about once)
            specs, _ = self._specs(conn)
            self._add([v for v in specs.values() if v[0] >= len(self.device_map) or self.device_map[v[0]] < 0])
            self.refused.update(
                int(i) for i in np.unique(dev_ids) if i >= len(self.device_map) or self.device_map[i] < 0
            )
        known = dev_ids < len(self.device_map)
        dev = np.where(known, self.device_map[np.where(known, dev_ids, 0)], -1)
        mids = readings.metric_id.astype(np.int64)
        mknown = mids < len(self.metric_map)
        met = np.where(mknown, self.metric_map[np.where(mknown, mids, 0)], -1)
        keep = (dev >= 0) & (met >= 0)
        if not keep.any():  # nothing the engine judges (and an engine without devices refuses to run)
            return self._write(conn, [], *position)
        seq = readings.seq if readings.seq is not None else np.zeros(len(readings), dtype=np.int64)
        out = self.engine.process(
            dev[keep].astype(np.int32),
            met[keep].astype(np.int16),
            readings.ts_us[keep],
            readings.value[keep],
            seq[keep],
        )
        return self._write(conn, out.records(), *position)

    def _unseen(self, dev_ids: npt.NDArray[np.int64]) -> bool:
        if not len(dev_ids):
            return False
        outside = dev_ids >= len(self.device_map)
        missing = outside | (self.device_map[np.where(outside, 0, dev_ids)] < 0)
        return bool(missing.any()) and not set(np.unique(dev_ids[missing]).tolist()) <= self.refused

    def tick(self, conn: psycopg.Connection[Any]) -> int:
        if not self.engine.device_ids:
            return 0
        self._consistent = False
        out = self.engine.tick(int(self.clock().timestamp() * 1e6))
        if not len(out):  # nothing moved: the engine is still exactly what is written
            self._consistent = True
            return 0
        return self._write(conn, out.records(), self.position_us)

    def _write(self, conn: psycopg.Connection[Any], records: list[Any], position_us: int, commit_seq: int = 0) -> int:
        now = self.clock()
        with conn.transaction():
            self.write_transitions(conn, records, self.rules, now, self.engine)
            self.position_us = position_us
            if commit_seq:
                self.position_seq = max(self.position_seq or 0, commit_seq)
            if time.monotonic() - self._saved_at >= self.checkpoint_every_s:
                self.save_checkpoint(conn)
        self._consistent = True
        return len(records)

    def save_checkpoint(self, conn: psycopg.Connection[Any]) -> None:
        checkpoints.save_checkpoint(
            conn, self.position_us, self.position_seq, list(self.engine.device_ids), self.engine.snapshot()
        )
        self._saved_at = time.monotonic()

    def catch_up(self, conn: psycopg.Connection[Any]) -> int:
        """Evaluate every stored reading committed after the position, batch by batch in commit order (step 3)."""
        rows = checkpoints.replay_rows(conn, self.position_us, self.position_seq)
        if not rows:
            return 0
        cols = np.array(rows, dtype=np.float64)
        rec = np.array([r[0] for r in rows], dtype=np.int64)
        commit = np.array([r[6] for r in rows], dtype=np.int64)
        bounds = np.flatnonzero((np.diff(rec) != 0) | (np.diff(commit) != 0)) + 1
        count = 0
        for part in np.split(np.arange(len(rows)), bounds):
            batch = ReadingBatch(
                ts_us=np.array([rows[i][3] for i in part], dtype=np.int64),
                device_id=cols[part, 1].astype(np.int32),
                metric_id=cols[part, 2].astype(np.int16),
                value=cols[part, 4],
                seq=np.array([rows[i][5] for i in part], dtype=np.int64),
            )
            count += self.evaluate(conn, batch, int(rec[part[0]]), int(commit[part[0]]))
        return count

    # -- running ------------------------------------------------------------------------------------------------
    def on_durable(self, batch: IngestBatch) -> None:
        if not len(batch.readings):
            return
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            self._behind = True  # the worker reads it back from the database

    async def start(self) -> None:
        def prepare() -> int:
            with connect(self.conninfo, autocommit=True) as conn:
                self.load(conn)
                return self.catch_up(conn)

        replayed = await asyncio.to_thread(prepare)
        log.info("engine runner ready: %r, %d transitions replayed from the database", self.engine, replayed)
        self._task = asyncio.create_task(self._run(), name="engine-runner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._task = None

        def save() -> None:
            if not self._consistent:
                log.warning("engine checkpoint not saved at stop: the engine may be ahead of the alerts written")
                return
            with connect(self.conninfo) as conn, conn.transaction():
                self.save_checkpoint(conn)

        try:
            await asyncio.to_thread(save)
        except SentinelError as exc:
            log.warning("engine checkpoint not saved at stop: %s", exc)

    async def _run(self) -> None:
        # Autocommit: each _write is its own transaction (conn.transaction()). Without it, the first statement
        # outside one (loading the registry after a reconnect) opened a transaction that never ended, and every
        # alert written after it stayed uncommitted: lost at the next disconnect.
        conn = await asyncio.to_thread(lambda: connect(self.conninfo, autocommit=True))
        try:
            next_tick = time.monotonic() + self.tick_s
            while True:
                try:
                    batch = await asyncio.wait_for(self._queue.get(), timeout=max(0.01, next_tick - time.monotonic()))
                except TimeoutError:
                    batch = None
                try:
                    if self._behind:
                        self._drain()
                        self._behind = False
                        await asyncio.to_thread(self.catch_up, conn)
                    elif batch is not None and not self._evaluated(batch):
                        await asyncio.to_thread(
                            self.evaluate, conn, batch.readings, batch.received_at_us, batch.commit_seq
                        )
                    if time.monotonic() >= next_tick:
                        next_tick = time.monotonic() + self.tick_s
                        await asyncio.to_thread(self.tick, conn)
                except (psycopg.Error, SentinelError) as exc:
                    # The engine may have moved past what was written, and the readings are durable: reload the
                    # engine from the checkpoint and replay from its position, once the database answers again.
                    log.warning("engine runner: %s; reloading from the checkpoint and catching up", exc)
                    conn.close()
                    conn = await self._recover()
        finally:
            conn.close()

    async def _recover(self) -> psycopg.Connection[Any]:
        attempts = 0
        while True:
            await asyncio.sleep(1.0)
            self._drain()
            try:
                conn = await asyncio.to_thread(lambda: connect(self.conninfo, autocommit=True))
            except SentinelError as exc:
                attempts += 1  # said once, then every minute: an outage is not a flood of warnings
                if attempts % 60 == 1:
                    log.warning("engine runner waiting for the database: %s", exc)
                continue
            try:
                await asyncio.to_thread(self.load, conn)
                await asyncio.to_thread(self.catch_up, conn)
            except (psycopg.Error, SentinelError) as exc:
                log.warning("engine runner recovery failed (%s); retrying", exc)
                conn.close()
                continue
            if attempts:
                log.warning("engine runner: the database is back; caught up from the checkpoint")
            return conn

    def _evaluated(self, batch: IngestBatch) -> bool:
        """Already covered: a queued batch the last catch-up read from the database (committed between the drain
        and its query) must not be evaluated twice."""
        return bool(batch.commit_seq) and self.position_seq is not None and batch.commit_seq <= self.position_seq

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()


def _numbers(attrs: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in dict(attrs or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[str(key)] = float(value)
    return out
