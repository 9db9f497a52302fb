"""The rule engine over a simulated stream, for detection reports.

:func:`run_offline` runs an :class:`~sentinel.engine.Engine` built from the simulation's registry over wire messages
without a broker or database (``sentinel simulate --report``), with staleness ticked on device time.
:func:`stored_transitions` reads back what a live run (the composition root with its engine runner) wrote, and
:class:`SimClock` is that runner's clock in accelerated runs: the newest device time it has evaluated.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from sentinel.batch import IngestBatch
from sentinel.engine import DeviceSpec, Engine, Transition, Transitions, load_rules
from sentinel.engine.catalog import GRADE_INDEX, METRIC_INDEX, grade_move
from sentinel.engine.model import RuleSet
from sentinel.registry.entries import RegistryFile
from sentinel.store.database import connect
from sentinel.wire import decode_telemetry


def engine_for(registry: RegistryFile, rules: RuleSet | None = None, lateness_s: float = 300.0) -> Engine:
    sector = {s.id: s.sector for s in registry.sites}
    specs = [
        DeviceSpec(d.id, d.device_class, d.site, sector[d.site], d.expected_interval_s, dict(d.attrs))
        for d in registry.devices
    ]
    overrides = {s.id: dict(s.attrs) for s in registry.sites if s.attrs}
    return Engine(rules or load_rules(), specs, site_overrides=overrides, lateness_s=lateness_s)


class TransitionLog:
    """Transitions as they come, with counters a live view can read from another thread."""

    def __init__(self, registry: RegistryFile) -> None:
        self.lock = threading.Lock()
        self.records: list[Transition] = []
        self.sector_of: dict[str, str] = {}
        site_sector = {s.id: s.sector for s in registry.sites}
        for s in registry.sites:
            self.sector_of[s.id] = s.sector
        for d in registry.devices:
            self.sector_of[d.id] = site_sector[d.site]
        self.raised: Counter[tuple[str, str]] = Counter()  # (sector, grade) of raises and escalations

    def add(self, out: Transitions) -> None:
        if not len(out):
            return
        records = out.records()
        with self.lock:
            self.records.extend(records)
            for r in records:
                if GRADE_INDEX[r.to_grade] > GRADE_INDEX[r.from_grade]:
                    self.raised[(self.sector_of.get(r.subject, "?"), r.to_grade)] += 1

    def snapshot(self) -> list[Transition]:
        with self.lock:
            return list(self.records)


def run_offline(
    registry: RegistryFile, payloads: Iterable[bytes], *, batch_messages: int = 2000, end_us: int | None = None
) -> list[Transition]:
    """The engine over wire payloads in arrival order, in micro-batches, duplicates dropped by (device, seq)."""
    engine = engine_for(registry)
    log = TransitionLog(registry)
    seen: set[tuple[str, int]] = set()
    clock = 0
    cols: tuple[list[int], list[int], list[int], list[float], list[int]] = ([], [], [], [], [])

    def flush() -> None:
        nonlocal clock
        if not cols[0]:
            return
        dev, met, ts, val, seq = (np.asarray(c) for c in cols)
        log.add(
            engine.process(
                dev.astype(np.int32),
                met.astype(np.int16),
                ts.astype(np.int64),
                val.astype(np.float64),
                seq.astype(np.int64),
            )
        )
        clock = max(clock, int(ts.max()))
        log.add(engine.tick(clock))
        for c in cols:
            c.clear()

    count, batch_start_us, batch_span_us = 0, 0, 5_000_000
    for payload in payloads:
        msg = decode_telemetry(payload, now_us=2**62)
        key = (msg.device, msg.seq)
        if key in seen:
            continue
        seen.add(key)
        ts_us = msg.ts_us
        batch_start_us = batch_start_us or ts_us
        d = engine.device_index(msg.device)
        for name, value in msg.metrics.items():
            cols[0].append(d)
            cols[1].append(METRIC_INDEX[name])
            cols[2].append(ts_us)
            cols[3].append(float(value))
            cols[4].append(msg.seq)
        count += 1
        # Cut micro-batches as the live collector does: by size, or after a few seconds (so staleness ticks).
        if count >= batch_messages or ts_us - batch_start_us > batch_span_us:
            flush()
            count, batch_start_us = 0, ts_us
    flush()
    if end_us is not None:
        log.add(engine.tick(end_us))
    return log.records


def grade_max(records: Sequence[Transition]) -> str:
    best = max((GRADE_INDEX[r.to_grade] for r in records), default=0)
    return next(k for k, v in GRADE_INDEX.items() if v == best)


def stored_transitions(conninfo: str) -> list[Transition]:
    """Grade moves as the alert lifecycle wrote them (``alert_events`` of ``alerts``), as engine transitions, so a
    detection report can score the live path's own output."""
    with connect(conninfo) as conn:
        rows = conn.execute(
            """SELECT a.rule_id, a.subject, d.device, coalesce(e.from_grade, 'none'), coalesce(e.to_grade, 'none'),
                      (extract(epoch FROM coalesce(e.device_ts, e.at)) * 1000000)::bigint, coalesce(a.last_value, 0)
               FROM alert_events e JOIN alerts a USING (alert_id) JOIN devices d ON d.device_id = a.device_id
               WHERE e.from_grade IS DISTINCT FROM e.to_grade
               ORDER BY e.event_id"""
        ).fetchall()
    out = []
    for rule, subject, device, from_grade, to_grade, ts_us, value in rows:
        move = grade_move(GRADE_INDEX[from_grade], GRADE_INDEX[to_grade])
        out.append(Transition(rule, subject, device, from_grade, to_grade, move, int(ts_us), float(value), -1))
    return out


class SimClock:
    """The engine runner's clock in an accelerated run: the newest device time among the batches the runner has
    evaluated (so staleness is judged in device time, never ahead of what the engine saw), plus counters to know
    when the runner has caught up. Give it to the root as ``engine_clock=clock, on_durable=clock.wrap``, then set
    ``clock.stage = sentinel.runner`` once started (tests/sim/conftest.py)."""

    def __init__(self) -> None:
        self.stage: Any = None  # the EngineRunner: its position_us says which batches it has evaluated
        self.newest_us = 0
        self.last_received_us = 0
        self.messages = 0
        self._marks: list[tuple[int, int]] = []  # (received_at_us, newest device time up to that batch)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        position = int(getattr(self.stage, "position_us", 0)) if self.stage is not None else 0
        with self._lock:
            i = bisect.bisect_right(self._marks, (position, 2**63)) - 1
            newest = self._marks[i][1] if i >= 0 else 0
        return datetime.fromtimestamp(newest / 1e6, UTC)

    def wrap(self, inner: Callable[[IngestBatch], None]) -> Callable[[IngestBatch], None]:
        def on_durable(batch: IngestBatch) -> None:
            with self._lock:
                if len(batch.readings):
                    self.newest_us = max(self.newest_us, int(batch.readings.ts_us.max()))
                self.messages += len(batch.messages)
                if len(batch.readings):  # the stage skips batches without readings: they move no position
                    self.last_received_us = max(self.last_received_us, batch.received_at_us)
                    self._marks.append((batch.received_at_us, self.newest_us))
            inner(batch)

        return on_durable

    @property
    def caught_up(self) -> bool:
        return self.stage is not None and int(self.stage.position_us) >= self.last_received_us
