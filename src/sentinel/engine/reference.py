"""A plain per-reading evaluator with the same semantics as :class:`~sentinel.engine.engine.Engine`.

It exists for tests: loops and dictionaries, one reading at a time, written from the rules in the module
docstrings of :mod:`sentinel.engine.engine` and :mod:`sentinel.engine.evaluate`, not from the array code. It
shares only the device table and the parameter resolution, so any disagreement is about evaluation.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.live import load_rule_model
from sentinel.engine.anomaly.model import AnomalyModel
from sentinel.engine.catalog import GRADE_NAMES, METRIC_INDEX, transition_kind
from sentinel.engine.devices import DeviceSpec, DeviceTable
from sentinel.engine.model import GROUP_KINDS, Rule, RuleSet
from sentinel.engine.params import RuleParams, concat, resolve
from sentinel.engine.transitions import Transition
from sentinel.errors import ModelError


@dataclass
class Reading:
    device: int
    metric: int
    ts: int
    te: int
    value: float
    seq: int
    pv: float
    pt: int | None
    order: int  # position in series order


MISSING = object()  # a state entry that does not exist (distinct from a stored None)
Row = tuple[int, int, int, float, int]  # device, metric, device time, value, seq


@dataclass
class Record:
    """One batch in the rewind log: newest time per device, the rows evaluated, state before, keys sent."""

    newest: dict[int, int]
    rows: list[Row]
    undo: dict[tuple[str, int, int], object]
    sent: set[tuple[int, ...]]


#: devices, sites, (per rule: subjects, grades before), keys sent, rows to replay, time of the earliest late row
Rewind = tuple[set[int], set[int], list[tuple[list[int], list[int]]], set[tuple[int, ...]], list[Row], int]


class ReferenceEngine:
    """Same contract as Engine.process/tick, returning lists of :class:`Transition`."""

    def __init__(
        self,
        rules: RuleSet,
        devices: Sequence[DeviceSpec] = (),
        site_overrides: dict[str, dict[str, float]] | None = None,
        lateness_s: float = 300.0,
        models_dir: Path | None = None,
        rewind_limit: int = 2_000_000,
    ) -> None:
        self.rules = rules
        self.rewind_limit = rewind_limit
        self.records: deque[Record] = deque()
        self.pending: dict[tuple[str, int, int], object] = {}  # state before the ticks since the last batch
        self.held = 0
        self.floor: dict[int, int] = {}
        self.overrides = dict(site_overrides or {})
        self.lateness_us = round(lateness_s * 1e6)
        self.table = DeviceTable(rules)
        self.params: list[RuleParams] = []
        self.inst: list[dict[int, int]] = [{} for _ in rules.rules]
        self.series: dict[int, tuple[float, int, int]] = {}  # sid → (value, te, seq)
        self.frontier: dict[int, int] = {}
        self.active: list[dict[int, int]] = [defaultdict(int) for _ in rules.rules]
        self.on: list[dict[tuple[int, int], bool]] = [defaultdict(bool) for _ in rules.rules]
        self.since: list[dict[tuple[int, int], int | None]] = [{} for _ in rules.rules]
        self.mark: list[dict[int, int | None]] = [{} for _ in rules.rules]
        self.total: list[dict[int, int]] = [defaultdict(int) for _ in rules.rules]
        self.counts: list[dict[tuple[int, int], int]] = [defaultdict(int) for _ in rules.rules]
        # Anomaly rules: the model (None when refused), and per instance the latest feature values, the scored
        # rows and the detector statistics so far.
        self.models: dict[int, AnomalyModel | None] = {}
        for ri, rule in enumerate(rules.rules):
            if rule.kind == "anomaly" and models_dir is not None:
                try:
                    self.models[ri] = load_rule_model(rule, Path(models_dir))
                except ModelError:
                    self.models[ri] = None
        self.latest: list[dict[int, dict[int, float]]] = [defaultdict(dict) for _ in rules.rules]
        self.scored_rows: list[dict[int, list[list[float]]]] = [defaultdict(list) for _ in rules.rules]
        self.statistics: list[dict[int, list[float]]] = [defaultdict(list) for _ in rules.rules]
        self.add_devices(devices)

    def add_devices(self, specs: Sequence[DeviceSpec]) -> None:
        new = self.table.add(list(specs))
        for ri, rule in enumerate(self.rules.rules):
            members = [d for d in new if any(self.table.specs[d].device_class == c for c in rule.device_classes)]
            fresh = resolve(rule, self.table, np.array(members, dtype=np.int64), self.overrides)
            base = len(self.inst[ri])
            for i, d in enumerate(members):
                self.inst[ri][d] = base + i
                for t, term in enumerate(rule.terms):
                    if term.negate:
                        group = self.table.device_site[d] if rule.scope == "site" else base + i
                        self.counts[ri][(t, int(group))] += 1
            if ri < len(self.params):
                self.params[ri] = concat(self.params[ri], fresh)
            else:
                self.params.append(fresh)

    def process(
        self,
        device: npt.NDArray[np.int32],
        metric: npt.NDArray[np.int16],
        ts_us: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
        seq: npt.NDArray[np.int64],
    ) -> list[Transition]:
        rows = []
        for d, m, t, v, s in zip(
            device.tolist(), metric.tolist(), ts_us.tolist(), value.tolist(), seq.tolist(), strict=True
        ):
            slot = int(self.table.slot[self.table.device_class[d], m])
            if math.isfinite(v) and slot >= 0:
                rows.append((d, m, t, v, s))
        before = dict(self.frontier)
        rows = [r for r in rows if r[0] not in before or r[2] >= before[r[0]] - self.lateness_us]
        late = [r for r in rows if r[0] in before and r[2] < before[r[0]] and r[2] >= self.floor.get(r[0], r[2])]
        rewound = self._rewind(late) if late else None
        for d, _, t, *_ in rows:
            self.frontier[d] = max(self.frontier.get(d, t), t)
        if rewound is None:
            out, _, record = self._pass(rows)
            record.sent = {self._key(ri, subject, t) for ri, subject, t in out}
            self._log(record)
            return [x[2] for x in out]
        _, _, _, sent_before, replay, split = rewound
        last: dict[tuple[int, int], int] = {}
        early = [r for r in replay if r[2] < split]
        passes: list[tuple[Record, list[tuple[int, int, Transition]]]] = []
        early_readings: list[Reading] = []
        if early:
            out, early_readings, record = self._pass(early)
            passes.append((record, self._drop_sent(out, rewound, last)))
        out, readings, record = self._pass(rows + [r for r in replay if r[2] >= split])
        second = self._drop_sent(out, rewound, last) + self._fixups(rewound, last, readings, early_readings)
        passes.append((record, second))
        emitted: list[tuple[int, int, Transition]] = []
        for i, (record, mine) in enumerate(passes):
            record.sent = {self._key(ri, subject, t) for ri, subject, t in mine}
            if len(passes) == 1:
                record.sent |= sent_before
            else:
                record.sent |= {k for k in sent_before if (k[5] < split) == (i == 0)}
            self._log(record)
            emitted += mine
        emitted.sort(key=lambda x: (x[2].ts_us, x[0], x[1]))
        return [x[2] for x in emitted]

    def _pass(self, rows: list[Row]) -> tuple[list[tuple[int, int, Transition]], list[Reading], Record]:
        rows = sorted(rows, key=lambda r: (r[1], r[0], r[2], r[4]))
        undo = self._capture({r[0] for r in rows}) | self.pending  # before the ticks is before the batch
        self.pending = {}
        readings = []
        for i, (d, m, t, v, s) in enumerate(rows):
            sid = int(self.table.series_base[d]) + int(self.table.slot[self.table.device_class[d], m])
            pv, pt, _ = self.series.get(sid, (math.nan, None, -1))
            te = t if pt is None else max(t, pt)
            readings.append(Reading(d, m, t, te, v, s, pv, pt, i))
            self.series[sid] = (v, te, s)
        out: list[tuple[int, int, Transition]] = []
        for ri, rule in enumerate(self.rules.rules):
            if rule.kind == "staleness":
                out += self._fresh(ri, rule, readings)
            elif rule.kind in GROUP_KINDS:
                out += self._group(ri, rule, readings)
            elif rule.kind == "anomaly":
                out += self._anomaly(ri, rule, readings)
            else:
                out += self._level_rule(ri, rule, readings)
        out.sort(key=lambda x: (x[2].ts_us, x[0], x[1]))
        newest: dict[int, int] = {}
        for d, _, t, *_ in rows:
            newest[d] = max(newest.get(d, t), t)
        return out, readings, Record(newest, rows, undo, set())

    def _log(self, record: Record) -> None:
        self.records.append(record)
        self.held += len(record.rows)
        self._trim()

    # -- late readings: the rewind log, written from the rules in :mod:`sentinel.engine.rewind` ---------------
    def forget(self) -> None:
        """What :meth:`Engine.restore` does to the log: nothing before now can be rewound."""
        self.records.clear()
        self.pending = {}
        self.held = 0
        for d, t in self.frontier.items():
            self.floor[d] = max(self.floor.get(d, t), t)

    def _site_rule(self, ri: int) -> bool:
        rule = self.rules.rules[ri]
        return rule.scope == "site" and rule.kind in GROUP_KINDS

    def _key(self, ri: int, subject: int, t: Transition) -> tuple[int, ...]:
        device = self.table.index[t.device_id]
        grades = (GRADE_NAMES.index(t.from_grade), GRADE_NAMES.index(t.to_grade))
        return (ri, subject, device, *grades, t.ts_us, t.seq)

    def _owned(self, key: tuple[int, ...], devices: set[int], sites: set[int]) -> bool:
        return key[1] in (sites if self._site_rule(key[0]) else devices)

    def _state_of(self, ri: int, key: int) -> dict[str, object]:
        """Every state entry of one rule instance (or site group), copied; missing entries as None markers."""
        rule = self.rules.rules[ri]
        got: dict[str, object] = {"active": self.active[ri].get(key)}
        for k in range(len(rule.levels)):
            got[f"on{k}"] = self.on[ri].get((key, k))
            got[f"since{k}"] = self.since[ri].get((key, k), MISSING)
        for t in range(len(rule.terms)):
            got[f"counts{t}"] = self.counts[ri].get((t, key))
        if not self._site_rule(ri):
            got["mark"] = self.mark[ri].get(key, MISSING)
            got["total"] = self.total[ri].get(key)
            got["latest"] = copy.deepcopy(self.latest[ri].get(key))
            got["rows"] = copy.deepcopy(self.scored_rows[ri].get(key))
            got["statistics"] = copy.deepcopy(self.statistics[ri].get(key))
        return got

    def _put_state(self, ri: int, key: int, saved: dict[str, object]) -> None:
        def put(table: dict[Any, Any], k: Any, value: object) -> None:
            if value is None or value is MISSING:
                table.pop(k, None)
            else:
                table[k] = copy.deepcopy(value)

        rule = self.rules.rules[ri]
        put(self.active[ri], key, saved["active"])
        for k in range(len(rule.levels)):
            put(self.on[ri], (key, k), saved[f"on{k}"])
            put(self.since[ri], (key, k), saved[f"since{k}"])
            if saved[f"since{k}"] is None:  # a stored None ("condition not holding") is a value
                self.since[ri][(key, k)] = None
        for t in range(len(rule.terms)):
            put(self.counts[ri], (t, key), saved[f"counts{t}"])
        if not self._site_rule(ri):
            put(self.mark[ri], key, saved["mark"])
            if saved["mark"] is None:
                self.mark[ri][key] = None
            put(self.total[ri], key, saved["total"])
            put(self.latest[ri], key, saved["latest"])
            put(self.scored_rows[ri], key, saved["rows"])
            put(self.statistics[ri], key, saved["statistics"])

    def _capture(self, devices: set[int]) -> dict[tuple[str, int, int], object]:
        """Before a batch: the series of these devices, their rule instances, and their sites' group state."""
        undo: dict[tuple[str, int, int], object] = {}
        for d in devices:
            base, cls = int(self.table.series_base[d]), int(self.table.device_class[d])
            sids = [base + i for i in range(int(self.table.block[cls]))]
            undo[("series", -1, d)] = {sid: self.series.get(sid) for sid in sids}
            for ri in range(len(self.rules.rules)):
                inst = self.inst[ri].get(d)
                if inst is None:
                    continue
                if self._site_rule(ri):
                    site = int(self.table.device_site[d])
                    undo[("site", ri, site)] = self._state_of(ri, site)
                else:
                    undo[("rule", ri, d)] = self._state_of(ri, inst)
        return undo

    def _restore(self, entry: tuple[str, int, int], saved: object) -> None:
        kind, ri, owner = entry
        if kind == "series":
            assert isinstance(saved, dict)
            for sid, value in saved.items():
                if value is None:
                    self.series.pop(sid, None)
                else:
                    self.series[sid] = value
        elif kind == "site":
            assert isinstance(saved, dict)
            self._put_state(ri, owner, saved)
        else:
            assert isinstance(saved, dict)
            self._put_state(ri, self.inst[ri][owner], saved)

    def _rewind(self, late: list[tuple[int, int, int, float, int]]) -> Rewind | None:
        late_min: dict[int, int] = {}
        for d, _, t, *_ in late:
            late_min[d] = min(late_min.get(d, t), t)
        start = next(
            (
                i
                for i, rec in enumerate(self.records)
                if any(d in late_min and t > late_min[d] for d, t in rec.newest.items())
            ),
            None,
        )
        if start is None:
            return None
        devices, sites = set(late_min), set()
        if any(self._site_rule(ri) for ri in range(len(self.rules.rules))):
            sites = {int(self.table.device_site[d]) for d in devices}
            devices |= {d for d in range(len(self.table)) if int(self.table.device_site[d]) in sites}
        grades: list[tuple[list[int], list[int]]] = []
        for ri in range(len(self.rules.rules)):
            if self._site_rule(ri):
                subjects = sorted(sites)
                grades.append((subjects, [self.active[ri][s] for s in subjects]))
            else:
                subjects = sorted(d for d in devices if d in self.inst[ri])
                grades.append((subjects, [self.active[ri][self.inst[ri][d]] for d in subjects]))
        sent: set[tuple[int, ...]] = set()
        for rec in list(self.records)[start:]:
            sent |= {k for k in rec.sent if self._owned(k, devices, sites)}

        def owned(entry: tuple[str, int, int]) -> bool:
            return entry[2] in (sites if entry[0] == "site" else devices)

        for entry, saved in self.pending.items():  # ticks since the last batch are the newest changes
            if owned(entry):
                self._restore(entry, saved)
        self.pending = {e: v for e, v in self.pending.items() if not owned(e)}
        for rec in reversed(list(self.records)[start:]):
            for entry, saved in rec.undo.items():
                if owned(entry):
                    self._restore(entry, saved)
        replay = []
        for rec in list(self.records)[start:]:
            replay += [r for r in rec.rows if r[0] in devices]
            kept = [r for r in rec.rows if r[0] not in devices]
            self.held -= len(rec.rows) - len(kept)
            rec.rows = kept
            rec.newest = {d: t for d, t in rec.newest.items() if d not in devices}
            rec.undo = {e: v for e, v in rec.undo.items() if not owned(e)}
            rec.sent = {k for k in rec.sent if not self._owned(k, devices, sites)}
        return devices, sites, grades, sent, replay, min(late_min.values())

    def _drop_sent(
        self, out: list[tuple[int, int, Transition]], rw: Rewind, last: dict[tuple[int, int], int]
    ) -> list[tuple[int, int, Transition]]:
        devices, sites, _, sent, _, _ = rw
        kept = []
        for ri, subject, t in out:
            key = self._key(ri, subject, t)
            if self._owned(key, devices, sites):
                if key in sent:
                    continue
                last[(ri, subject)] = GRADE_NAMES.index(t.to_grade)
            kept.append((ri, subject, t))
        return kept

    def _fixups(
        self, rw: Rewind, last: dict[tuple[int, int], int], readings: list[Reading], early: list[Reading]
    ) -> list[tuple[int, int, Transition]]:
        out = []
        for ri, (subjects, before) in enumerate(rw[2]):
            for s, grade in zip(subjects, before, strict=True):
                slot = s if self._site_rule(ri) else self.inst[ri][s]
                sent_grade, now = last.get((ri, s), grade), self.active[ri][slot]
                if sent_grade == now:
                    continue
                for source in (readings, early):  # the last pass first
                    if self._site_rule(ri):
                        mine = [r for r in source if int(self.table.device_site[r.device]) == s]
                    else:
                        mine = [r for r in source if r.device == s]
                    if mine:
                        r = max(mine, key=lambda r: (r.te, r.seq, r.metric, r.device))
                        out.append(self._emit(ri, s, r, sent_grade, now))
                        break
        return out

    def _trim(self) -> None:
        while self.records:
            rec = self.records[0]
            done = all(t <= self.frontier[d] - self.lateness_us for d, t in rec.newest.items())
            if done or self.held > self.rewind_limit:
                if not done:
                    for d, t in rec.newest.items():
                        self.floor[d] = max(self.floor.get(d, t), t)
                self.records.popleft()
                self.held -= len(rec.rows)
                continue
            return

    def _emit(self, ri: int, subject: int, r: Reading, before: int, after: int) -> tuple[int, int, Transition]:
        rule = self.rules.rules[ri]
        name = (
            self.table.sites[subject]
            if rule.scope == "site" and rule.kind in GROUP_KINDS
            else self.table.specs[subject].id
        )
        return (
            ri,
            subject,
            Transition(
                rule.id,
                name,
                self.table.specs[r.device].id,
                GRADE_NAMES[before],
                GRADE_NAMES[after],
                transition_kind(before, after),
                r.te,
                r.value,
                r.seq,
                rule.alert_kind,
            ),
        )

    def _levels(self, ri: int, rule: Rule, key: int, inst: int, signal: float, te: int, hold: int | None = None) -> int:
        p = self.params[ri]
        grade = 0
        for k, level in enumerate(rule.levels):
            at = 0.5 if hold is not None else float(p.at[k][inst])
            clear = 0.5 if hold is not None else float(p.clear[k][inst])
            if rule.direction == "below":
                cond, past = signal <= at, signal > clear
            else:
                cond, past = signal >= at, signal < clear
            reset = past if level.clear is not None else not cond
            if level.for_s is not None:
                since = self.since[ri].get((key, k))
                since = (since if since is not None else te) if cond else None
                self.since[ri][(key, k)] = since
                need = hold if hold is not None else int(p.hold_us[k][inst])
                cond = since is not None and te - since >= need
            if cond:
                self.on[ri][(key, k)] = True
            elif reset:
                self.on[ri][(key, k)] = False
            if self.on[ri][(key, k)]:
                grade = level.grade
        return grade

    def _signal(self, ri: int, rule: Rule, inst: int, r: Reading) -> float:
        p = self.params[ri]
        if rule.kind == "threshold":
            return r.value
        if rule.kind == "deviation":
            base, scale = float(p.baseline[inst]), float(p.scale[inst])
            if rule.deviation == "up":
                return (r.value - base) / scale
            if rule.deviation == "down":
                return (base - r.value) / scale
            return abs(r.value - base) / scale
        if rule.kind == "rate":
            if r.pt is None or r.te - r.pt <= 0:
                return math.nan
            return (r.value - r.pv) * (1e6 * rule.per_s) / float(r.te - r.pt)
        if rule.kind == "stuck":
            if math.isnan(r.pv) or abs(r.value - r.pv) > rule.eps:
                self.mark[ri][inst] = r.te
            return (r.te - (self.mark[ri][inst] or 0)) / 1e6
        window = r.te // int(p.window_us[inst])  # count
        if self.mark[ri].get(inst) != window:
            self.mark[ri][inst] = window
            self.total[ri][inst] = 0
        self.total[ri][inst] += int(min(max(r.value, 0.0), 2.0**31))
        return float(self.total[ri][inst])

    def _level_rule(self, ri: int, rule: Rule, readings: list[Reading]) -> list[tuple[int, int, Transition]]:
        out = []
        m = METRIC_INDEX[rule.metric or ""]
        for r in readings:
            inst = self.inst[ri].get(r.device)
            if r.metric != m or inst is None:
                continue
            grade = self._levels(ri, rule, inst, inst, self._signal(ri, rule, inst, r), r.te)
            if grade != self.active[ri][inst]:
                out.append(self._emit(ri, r.device, r, self.active[ri][inst], grade))
                self.active[ri][inst] = grade
        return out

    def _group(self, ri: int, rule: Rule, readings: list[Reading]) -> list[tuple[int, int, Transition]]:
        site = rule.scope == "site"
        metrics = {METRIC_INDEX[m] for m in rule.metrics}
        mine = [r for r in readings if r.metric in metrics and r.device in self.inst[ri]]

        def group_of(r: Reading) -> int:
            return int(self.table.device_site[r.device]) if site else self.inst[ri][r.device]

        mine.sort(key=lambda r: (group_of(r), r.te, r.device, r.metric, r.order))
        p, out = self.params[ri], []
        for r in mine:
            inst, group = self.inst[ri][r.device], group_of(r)
            for t, term in enumerate(rule.terms):
                if METRIC_INDEX[term.metric] != r.metric:
                    continue
                thr = float(p.term_at[t][inst])
                now, before = (
                    (r.value >= thr, r.pv >= thr) if term.direction == "above" else (r.value <= thr, r.pv <= thr)
                )
                if term.negate:
                    now, before = not now, not before
                self.counts[ri][(t, group)] += int(now) - int(before)
            holds = all(self.counts[ri][(t, group)] > 0 for t in range(len(rule.terms)))
            level = rule.levels[0]
            hold = 0
            if level.for_s is not None:
                if site:
                    name = self.table.sites[group]
                    hold = round(self.overrides.get(name, {}).get(level.for_s.key, level.for_s.value) * 1e6)
                else:
                    hold = int(p.hold_us[0][inst])
            grade = self._levels(ri, rule, group, inst, 1.0 if holds else 0.0, r.te, hold)
            if grade != self.active[ri][group]:
                out.append(self._emit(ri, group if site else r.device, r, self.active[ri][group], grade))
                self.active[ri][group] = grade
        return out

    def _anomaly(self, ri: int, rule: Rule, readings: list[Reading]) -> list[tuple[int, int, Transition]]:
        """One reading at a time: the device's latest value of each feature metric makes a row; the model's
        detector scores it against the device's earlier rows; the signal is the trailing mean of the statistics
        over the model's smoothing, divided by its limit (NaN before every feature is known or while warming up)."""
        model = self.models.get(ri)
        if model is None:
            return []
        features = [METRIC_INDEX[m] for m in rule.features]
        mine = [r for r in readings if r.metric in features and r.device in self.inst[ri]]
        mine.sort(key=lambda r: (self.inst[ri][r.device], r.te, r.metric, r.order))
        out = []
        for r in mine:
            inst = self.inst[ri][r.device]
            latest = self.latest[ri][inst]
            latest[r.metric] = r.value
            signal = math.nan
            if all(m in latest for m in features):
                row = [latest[m] for m in features]
                history = self.scored_rows[ri][inst]
                keep = model.detector.history_rows
                past = np.array(history[len(history) - keep :] if keep else [], dtype=np.float64)
                statistic = float(model.detector.statistic(past.reshape(-1, len(row)), np.array([row]))[0])
                stats = self.statistics[ri][inst]
                stats.append(statistic)
                history.append(row)
                smoothed = sum(stats[-model.smoothing :]) / len(stats[-model.smoothing :])
                if len(history) > model.warmup_rows:
                    signal = smoothed / model.limit
            scored = Reading(r.device, r.metric, r.ts, r.te, signal, r.seq, r.pv, r.pt, r.order)
            grade = self._levels(ri, rule, inst, inst, signal, r.te)
            if grade != self.active[ri][inst]:
                out.append(self._emit(ri, r.device, scored, self.active[ri][inst], grade))
                self.active[ri][inst] = grade
        return out

    def _fresh(self, ri: int, rule: Rule, readings: list[Reading]) -> list[tuple[int, int, Transition]]:
        first: dict[int, Reading] = {}
        for r in readings:
            inst = self.inst[ri].get(r.device)
            if inst is None or self.active[ri][inst] == 0:
                continue
            old = first.get(r.device)
            if old is None or (r.te, r.seq, r.metric) < (old.te, old.seq, old.metric):
                first[r.device] = r
        out = []
        for d, r in first.items():
            inst = self.inst[ri][d]
            out.append(self._emit(ri, d, r, self.active[ri][inst], 0))
            self.active[ri][inst] = 0
        return out

    def tick(self, now_us: int) -> list[Transition]:
        out = []
        for ri, rule in enumerate(self.rules.rules):
            if rule.kind != "staleness":
                continue
            for d, inst in self.inst[ri].items():
                if d not in self.frontier:
                    continue
                age = float(now_us - self.frontier[d])
                grade = 0
                for k, level in enumerate(rule.levels):
                    if age >= float(self.params[ri].at[k][inst]):
                        grade = level.grade
                before = self.active[ri][inst]
                if grade > before:
                    self.pending.setdefault(("rule", ri, d), self._state_of(ri, inst))
                    self.active[ri][inst] = grade
                    name = self.table.specs[d].id
                    out.append(
                        (
                            ri,
                            d,
                            Transition(
                                rule.id,
                                name,
                                name,
                                GRADE_NAMES[before],
                                GRADE_NAMES[grade],
                                transition_kind(before, grade),
                                now_us,
                                age / 1e6,
                                -1,
                                rule.alert_kind,
                            ),
                        )
                    )
        out.sort(key=lambda x: (x[2].ts_us, x[0], x[1]))
        return [x[2] for x in out]
