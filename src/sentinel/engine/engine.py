"""The vectorised rule engine: micro-batches of readings in, alert transitions out.

Contract (others build against it)::

    engine = Engine(load_rules(), devices, site_overrides={"site-1": {"gas.ch4_lel.yellow": 20.0}},
                    lateness_s=300.0, models_dir=Path("/var/lib/sentinel/models"), rewind_max_readings=2_000_000)
    out = engine.process(device, metric, ts_us, value, seq)   # numpy columns of equal length N
    out = engine.tick(now_us)                                    # staleness, driven by the clock
    engine.add_devices([DeviceSpec(...)])                        # keeps all existing state
    blob = engine.snapshot(); engine.restore(blob)

Columns: ``device`` int32 (dense index, :meth:`device_index`), ``metric`` int16 (:meth:`metric_index`),
``ts_us`` int64 device time in UTC epoch µs, ``value`` float64 (bools 1.0/0.0), ``seq`` int64. Readings may
come in any order and interleave devices. The result is :class:`~sentinel.engine.transitions.Transitions`.

Time and order (DESIGN.md): rules run on device time, in device-time order per device. Per device the *frontier*
is the newest device time evaluated. A reading older than ``frontier - lateness`` is too late: it moves no state
and is counted in ``stats["too_late"]``. Every other reading is evaluated in order:

* within a batch each series is evaluated in (ts, seq) order and a device's metrics are merged by device time;
* a reading older than what its device evaluated in an earlier batch (``ts < frontier``) makes the engine rewind
  that device (with every device of its site when site-scope rules exist) to before the oldest logged batch it
  precedes and re-evaluate the device's readings since then together with this batch (:mod:`.rewind`; counted in
  ``stats["late"]``, ``stats["rewinds"]``, ``stats["replayed"]``). Nothing is held back, so no alert waits for the
  lateness bound; instead, what the re-evaluation finds is emitted as corrections: its transitions that were not
  emitted before (at their own device times, possibly before transitions already sent), then, where the grade in
  effect differs from the last grade emitted for that rule and subject, one transition from the emitted grade to
  the re-evaluated one at the subject's newest reading. Transitions already sent are not withdrawn. After every
  batch the state, and the last grade emitted per rule and subject, equal those of in-order evaluation.
* Ties in device time are ordered by seq within a series and by arrival across batches. Readings of different
  devices of a site that arrive in different batches are combined by site-scope rules in arrival order.
* The log is bounded (``rewind_max_readings`` readings) and not in the snapshot: a late reading older than what the
  log still covers for its device (after :meth:`restore`, a model reload, or a log full) is evaluated next, at the
  series' effective time ``te = max(ts, previous te)``, so durations never run backwards; such readings are *not*
  put back in order (``stats["out_of_order"]``).

Non-finite values and metrics a device's class does not report are not evaluated
(``stats["invalid"]``, ``stats["unmapped"]``). Duplicates by (device, seq) are dropped upstream, not here.

Staleness: :meth:`tick` grades each device by ``now_us - max(frontier, listening since)`` in multiples of its
expected interval (raise/escalate only); the device's next evaluated reading clears it. A device that never
reported is not judged stale, nor is silence from before :meth:`listening_since` (a restart of Sentinel).

Anomaly rules (``kind: anomaly``) score their device class's metrics with a model file from ``models_dir`` in the
same pass (see :mod:`sentinel.engine.anomaly.live`); without ``models_dir`` they are off. A model file that is
missing, corrupt or incompatible is refused: :attr:`Engine.model_errors` holds the ModelError per rule id, and
every other rule runs as usual. Changed model files are reloaded at the next batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.live import AnomalyRules
from sentinel.engine.catalog import METRICS, metric_index
from sentinel.engine.devices import DeviceSpec, DeviceTable
from sentinel.engine.evaluate import SortedBatch, group_rule, level_rule
from sentinel.engine.kernels import Segments, order_by, shift
from sentinel.engine.model import GROUP_KINDS, LEVEL_KINDS, RuleSet
from sentinel.engine.params import NEVER, RuleParams, concat, resolve
from sentinel.engine.reorder import Rewinder
from sentinel.engine.rewind import BatchRecord, Columns
from sentinel.engine.state import RuleState, SeriesState, dump, load
from sentinel.engine.transitions import Piece, Transitions, merge
from sentinel.errors import ModelError, UnknownDevice

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


class Engine:
    """Rule packs + devices → dense state; evaluates micro-batches with array operations only."""

    def __init__(
        self,
        rules: RuleSet,
        devices: Sequence[DeviceSpec] = (),
        site_overrides: dict[str, dict[str, float]] | None = None,
        lateness_s: float = 300.0,
        models_dir: Path | None = None,
        rewind_max_readings: int = 2_000_000,
    ) -> None:
        self.rules = rules
        self.site_overrides = dict(site_overrides or {})
        self.lateness_us = round(lateness_s * 1e6)
        self.table = DeviceTable(rules)
        self.rule_ids = tuple(r.id for r in rules.rules)
        self.alert_classes = tuple(r.alert_class for r in rules.rules)
        self.site_scope = tuple(r.scope == "site" and r.kind in GROUP_KINDS for r in rules.rules)
        self.params: list[RuleParams | None] = [None] * len(rules.rules)
        self.states = {r.id: RuleState.empty(r) for r in rules.rules}
        for rule in rules.rules:
            self.states[rule.id].extra = rule.kind in ("stuck", "count")
        self.series = SeriesState()
        self.site_hold_us: list[npt.NDArray[np.int64]] = [np.zeros(0, dtype=np.int64) for _ in rules.rules]
        self.stats: Counter[str] = Counter()
        self.anomaly = AnomalyRules(rules, Path(models_dir) if models_dir is not None else None)
        # Late readings put back in order (the rewind log and its journal of old values); None: the log is off.
        self.late = (
            Rewinder(
                rules, self.table, self.states, self.series, self.anomaly, self.site_scope, self.stats,
                self.lateness_us, rewind_max_readings,
            )
            if rewind_max_readings > 0
            else None
        )  # fmt: skip
        # Staleness counts silence from here at the earliest (see listening_since); 0 = from the device's frontier.
        self.listening_since_us = 0
        self.add_devices(list(devices))

    # -- registry ---------------------------------------------------------------------------------------------
    @staticmethod
    def metric_index(name: str) -> int:
        return metric_index(name)

    def device_index(self, device_id: str) -> int:
        try:
            return self.table.index[device_id]
        except KeyError:
            raise UnknownDevice(f"device {device_id!r} is not registered with the engine") from None

    @property
    def model_errors(self) -> dict[str, ModelError]:
        """Anomaly rules whose model file was refused (rule id → the error); empty when all loaded."""
        return dict(self.anomaly.errors)

    def reload_models(self) -> None:
        """Load model files that changed since they were read (also done at the start of every batch)."""
        self.anomaly.refresh()

    @property
    def device_ids(self) -> list[str]:
        return self.table.ids

    def add_devices(self, specs: Sequence[DeviceSpec]) -> None:
        """Register more devices; state of the devices already known is kept."""
        if not specs:
            return
        n_sites_before = len(self.table.sites)
        new = self.table.add(list(specs))
        new_devices = np.arange(new.start, new.stop, dtype=np.int64)
        self.series.grow(self.table.n_series, len(self.table))
        if self.late is not None:
            self.late.devices_added(len(self.table))
        for ri, rule in enumerate(self.rules.rules):
            pop = self.table.population(rule.device_classes)
            members = new_devices[pop[new_devices] >= 0]
            fresh = resolve(rule, self.table, members, self.site_overrides)
            old = self.params[ri]
            self.params[ri] = fresh if old is None else concat(old, fresh)
            state = self.states[rule.id]
            if rule.kind == "anomaly":
                self.anomaly.grow(ri, len(members))
            if self.site_scope[ri]:
                self._grow_sites(ri, state, members, n_sites_before)
            else:
                initial = np.array([[1 if t.negate else 0] * len(members) for t in rule.terms], dtype=np.int32)
                state.grow(len(members), initial.reshape(len(rule.terms), len(members)))

    def _grow_sites(self, ri: int, state: RuleState, members: npt.NDArray[np.int64], n_before: int) -> None:
        rule = self.rules.rules[ri]
        n_new = len(self.table.sites) - n_before
        state.grow(n_new)
        sites = self.table.device_site[members]
        for t, term in enumerate(rule.terms):
            if term.negate:  # a device with no reading yet has not acted
                np.add.at(state.counts[t], sites, 1)
        level = rule.levels[0]
        hold = np.zeros(len(self.table.sites), dtype=np.int64)
        if level.for_s is not None:
            for s, name in enumerate(self.table.sites):
                value = self.site_overrides.get(name, {}).get(level.for_s.key, level.for_s.value)
                hold[s] = round(value * 1e6)
        self.site_hold_us[ri] = hold

    # -- evaluation ---------------------------------------------------------------------------------------------
    def process(
        self,
        device: npt.NDArray[np.int32],
        metric: npt.NDArray[np.int16],
        ts_us: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
        seq: npt.NDArray[np.int64],
    ) -> Transitions:
        """Evaluate one micro-batch; returns the transitions it causes."""
        dev, met, ts, val, sq = self._columns(device, metric, ts_us, value, seq)
        self.anomaly.refresh()
        if self.late is not None:
            self.late.check_models()
        sid = self.table.series_of(dev, met)
        finite = np.isfinite(val)
        self.stats["readings"] += len(dev)
        self.stats["invalid"] += int((~finite).sum())
        self.stats["unmapped"] += int((finite & (sid < 0)).sum())
        keep = finite & (sid >= 0)
        frontier = self.series.frontier
        seen = frontier[dev]
        too_late = keep & (seen != NEVER) & (ts < seen - self.lateness_us)
        self.stats["too_late"] += int(too_late.sum())
        keep &= ~too_late
        rewound = None
        if self.late is not None:
            late = keep & (seen != NEVER) & (ts < seen) & (ts >= self.late.floor[dev])
            rewound = self.late.rewind(dev[late], ts[late]) if late.any() else None
        np.maximum.at(frontier, dev[keep], ts[keep])
        rows = np.flatnonzero(keep)
        batch = (dev[rows], met[rows], ts[rows], val[rows], sq[rows])
        if rewound is not None:
            assert self.late is not None
            return self.late.replay(batch, rewound, self._pass, self._merge)
        pieces, _, record = self._pass(batch)
        out = self._merge(pieces)
        if self.late is not None:
            assert record is not None
            self.late.push(record, out)
        return out

    def _merge(self, pieces: list[Piece]) -> Transitions:
        return merge(pieces, self.rule_ids, self.site_scope, self.device_ids, self.table.sites, self.alert_classes)

    def _pass(self, cols: Columns) -> tuple[list[Piece], SortedBatch, BatchRecord | None]:
        """Evaluate readings in order (one vectorised pass over every rule); the record of the pass for the log
        (its ``sent`` is filled in by the rewinder), None when the log is off."""
        dev, met, ts, val, sq = cols
        since = int(ts.min()) if len(ts) else 0
        order = order_by([met, dev, ts - since], sq)
        dev, met, ts, val, sq = dev[order], met[order], ts[order], val[order], sq[order]
        sid = self.table.series_of(dev, met)
        b = self._sorted(dev, met, ts, val, sq, sid)
        pieces: list[Piece] = []
        for ri, rule in enumerate(self.rules.rules):
            p, st = self.params[ri], self.states[rule.id]
            assert p is not None
            pop = self.table.population(rule.device_classes)
            piece: Piece | None = None
            if rule.kind in LEVEL_KINDS:
                piece = level_rule(ri, rule, p, st, pop, b)
            elif rule.kind in GROUP_KINDS:
                piece = group_rule(ri, rule, p, st, pop, b, self.table.device_site, self.site_hold_us[ri])
            elif rule.kind == "anomaly":
                piece = self.anomaly.evaluate(ri, rule, p, st, pop, b)
            elif len(b.device):
                piece = self._fresh_data(ri, b)
            if piece is not None:
                pieces.append(piece)
        tails, tail_sid = b.segments.tails, sid[b.segments.tails]
        # The log's record first: it keeps the series' values from before this pass.
        record = self.late.record(b, tail_sid, (dev, met, ts, val, sq)) if self.late is not None else None
        self.series.last_value[tail_sid] = b.value[tails]
        self.series.last_ts[tail_sid] = b.te[tails]
        self.series.last_seq[tail_sid] = b.seq[tails]
        return pieces, b, record

    def _columns(
        self,
        device: npt.ArrayLike,
        metric: npt.ArrayLike,
        ts_us: npt.ArrayLike,
        value: npt.ArrayLike,
        seq: npt.ArrayLike,
    ) -> tuple[I64, I64, I64, F64, I64]:
        """The batch as int64/float64 arrays, after checking lengths and index ranges."""
        dev, met = np.asarray(device, dtype=np.int64), np.asarray(metric, dtype=np.int64)
        ts, val, sq = np.asarray(ts_us, dtype=np.int64), np.asarray(value, dtype=np.float64), np.asarray(seq, np.int64)
        lengths = [len(a) for a in (dev, met, ts, val, sq)]
        if len(set(lengths)) != 1:
            raise ValueError(f"batch columns differ in length: {lengths}")
        if len(dev) and (dev.min() < 0 or dev.max() >= len(self.table)):
            bad = int(dev[(dev < 0) | (dev >= len(self.table))][0])
            raise UnknownDevice(f"device index {bad} is not registered (engine has {len(self.table)} devices)")
        if len(met) and (met.min() < 0 or met.max() >= len(METRICS)):
            raise ValueError(f"metric index out of range 0..{len(METRICS) - 1}")
        return dev, met, ts, val, sq

    def _sorted(
        self,
        device: npt.NDArray[np.int64],
        metric: npt.NDArray[np.int64],
        ts: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
        seq: npt.NDArray[np.int64],
        sid: npt.NDArray[np.int64],
    ) -> SortedBatch:
        start = np.ones(len(sid), dtype=np.bool_)
        start[1:] = sid[1:] != sid[:-1]
        sg = Segments.of(start)
        first_sid = sid[sg.heads]
        last_ts = self.series.last_ts[first_sid]
        # Effective time: never before what the series evaluated in an earlier batch.
        te = np.maximum(ts, last_ts[sg.seg])
        self.stats["out_of_order"] += int((ts < te).sum())
        pv = shift(value, sg.heads, self.series.last_value[first_sid])
        pt = shift(te, sg.heads, last_ts)
        bounds = np.searchsorted(metric, np.arange(len(METRICS) + 1)).astype(np.int64)
        return SortedBatch(device, metric, value, seq, te, pv, pt, start, bounds, sg)

    def _fresh_data(self, ri: int, b: SortedBatch) -> Piece | None:
        """Staleness clears with each stale device's earliest evaluated reading of this batch."""
        rule = self.rules.rules[ri]
        st = self.states[rule.id]
        if not st.active.any():
            return None
        inst = self.table.population(rule.device_classes)[b.device].astype(np.int64)
        stale = np.flatnonzero((inst >= 0) & (st.active[np.maximum(inst, 0)] > 0))
        if len(stale) == 0:
            return None
        order = np.lexsort((b.metric[stale], b.seq[stale], b.te[stale], b.device[stale]))
        pos = stale[order]
        first = np.ones(len(pos), dtype=np.bool_)
        first[1:] = b.device[pos[1:]] != b.device[pos[:-1]]
        pos = pos[first]
        inst = inst[pos]
        before = st.active[inst].copy()
        st.put("active", inst, 0)
        st.put("on", inst, 0)
        zero = np.zeros(len(pos), dtype=np.int8)
        return Piece(ri, b.device[pos], b.device[pos], before, zero, b.te[pos], b.value[pos], b.seq[pos])

    def listening_since(self, now_us: int) -> None:
        """Ingest (re)started listening at ``now_us``: staleness counts no silence from before it."""
        self.listening_since_us = max(self.listening_since_us, int(now_us))

    def tick(self, now_us: int) -> Transitions:
        """Grade staleness at wall-clock ``now_us``: no data for k × the expected interval."""
        pieces = []
        for ri, rule in enumerate(self.rules.rules):
            if rule.kind != "staleness":
                continue
            p, st = self.params[ri], self.states[rule.id]
            assert p is not None
            devices = self.table.members(rule.device_classes)
            frontier = self.series.frontier[devices]
            seen = frontier != NEVER
            # Silence that began before Sentinel listened (a restart, an outage of ingest) is not the device's:
            # it is measured from when listening (re)started, so a device gets its expected interval(s) of grace.
            since = np.maximum(np.where(seen, frontier, 0), self.listening_since_us)
            age = np.where(seen, now_us - since, 0).astype(np.float64)
            grade = np.zeros(len(devices), dtype=np.int8)
            for k, level in enumerate(rule.levels):
                grade[seen & (age >= p.at[k])] = level.grade
            moved = np.flatnonzero(grade > st.active)
            before = st.active[moved].copy()
            st.put("active", moved, grade[moved])
            d = devices[moved]
            pieces.append(
                Piece(
                    ri,
                    d,
                    d,
                    before,
                    grade[moved],
                    np.full(len(moved), now_us, dtype=np.int64),
                    age[moved] / 1e6,
                    np.full(len(moved), -1, dtype=np.int64),
                )
            )
        return self._merge(pieces)

    # -- state --------------------------------------------------------------------------------------------------
    def _header(self) -> dict[str, object]:
        return {"devices": self.device_ids, "rules": list(self.rule_ids), "sites": self.table.sites}

    def snapshot(self) -> bytes:
        """All rule state as bytes (an ``.npz``), for a restart to rebuild from."""
        return dump(self._header(), self.series, self.states, self.anomaly.arrays())

    def restore(self, data: bytes) -> None:
        """Replace the state with a snapshot taken from an engine with the same devices and rules."""
        self.anomaly.restore(load(data, self._header(), self.series, self.states))
        if self.late is not None:
            self.late.forget()  # the log is not in the snapshot: no rewinding past this point

    def state_nbytes(self) -> int:
        """Bytes of rule and series state (not parameters or indices)."""
        return sum(a.nbytes for a in self.series.arrays().values()) + sum(s.nbytes() for s in self.states.values())

    def __repr__(self) -> str:
        return f"Engine({len(self.rule_ids)} rules, {len(self.table)} devices, {self.table.n_series} series)"
