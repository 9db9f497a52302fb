"""A plain per-reading evaluator with the same semantics as :class:`~sentinel.engine.engine.Engine`.

It exists for tests: loops and dictionaries, one reading at a time, written from the rules in the module
docstrings of :mod:`sentinel.engine.engine` and :mod:`sentinel.engine.evaluate`, not from the array code. It
shares only the device table and the parameter resolution, so any disagreement is about evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.live import load_rule_model
from sentinel.engine.anomaly.model import AnomalyModel, Scorer
from sentinel.engine.catalog import GRADE_NAMES, METRIC_INDEX, grade_move
from sentinel.engine.devices import DeviceSpec, DeviceTable
from sentinel.engine.model import GROUP_KINDS, Rule, RuleSet
from sentinel.engine.params import RuleParams, concat, resolve
from sentinel.engine.reference_log import Reading, Record, ReferenceLog, ReferenceState, Row
from sentinel.engine.transitions import Transition
from sentinel.errors import ModelError


class ReferenceEngine:
    """Same contract as Engine.process/tick, returning lists of :class:`Transition`."""

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
        self.overrides = dict(site_overrides or {})
        self.lateness_us = round(lateness_s * 1e6)
        self.table = DeviceTable(rules)
        self.params: list[RuleParams] = []
        self.state = ReferenceState.empty(len(rules.rules))
        self.log = ReferenceLog(rules, self.table, self.state, self.lateness_us, rewind_max_readings, self._emit)
        # Anomaly rules: the model (None when refused).
        self.models: dict[int, AnomalyModel | None] = {}
        for ri, rule in enumerate(rules.rules):
            if rule.kind == "anomaly" and models_dir is not None:
                try:
                    self.models[ri] = load_rule_model(rule, Path(models_dir))
                except ModelError:
                    self.models[ri] = None
        self.add_devices(devices)

    def forget(self) -> None:
        """What :meth:`Engine.restore` does to the log: nothing before now can be rewound."""
        self.log.forget()

    def add_devices(self, specs: Sequence[DeviceSpec]) -> None:
        new = self.table.add(list(specs))
        for ri, rule in enumerate(self.rules.rules):
            members = [d for d in new if any(self.table.specs[d].device_class == c for c in rule.device_classes)]
            fresh = resolve(rule, self.table, np.array(members, dtype=np.int64), self.overrides)
            base = len(self.state.inst[ri])
            for i, d in enumerate(members):
                self.state.inst[ri][d] = base + i
                for t, term in enumerate(rule.terms):
                    if term.negate:
                        group = self.table.device_site[d] if rule.scope == "site" else base + i
                        self.state.counts[ri][(t, int(group))] += 1
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
        before = dict(self.state.frontier)
        rows = [r for r in rows if r[0] not in before or r[2] >= before[r[0]] - self.lateness_us]
        late = [r for r in rows if r[0] in before and r[2] < before[r[0]] and r[2] >= self.log.floor.get(r[0], r[2])]
        rewound = self.log.rewind(late) if late else None
        for d, _, t, *_ in rows:
            self.state.frontier[d] = max(self.state.frontier.get(d, t), t)
        if rewound is None:
            out, _, record = self._pass(rows)
            record.sent = {self.log.key(ri, subject, t) for ri, subject, t in out}
            self.log.push(record)
            return [x[2] for x in out]
        _, _, _, sent_before, replay, split = rewound
        last: dict[tuple[int, int], int] = {}
        early = [r for r in replay if r[2] < split]
        passes: list[tuple[Record, list[tuple[int, int, Transition]]]] = []
        early_readings: list[Reading] = []
        if early:
            out, early_readings, record = self._pass(early)
            passes.append((record, self.log.drop_sent(out, rewound, last)))
        out, readings, record = self._pass(rows + [r for r in replay if r[2] >= split])
        second = self.log.drop_sent(out, rewound, last) + self.log.fixups(rewound, last, readings, early_readings)
        passes.append((record, second))
        emitted: list[tuple[int, int, Transition]] = []
        for i, (record, mine) in enumerate(passes):
            record.sent = {self.log.key(ri, subject, t) for ri, subject, t in mine}
            if len(passes) == 1:
                record.sent |= sent_before
            else:
                record.sent |= {k for k in sent_before if (k[5] < split) == (i == 0)}
            self.log.push(record)
            emitted += mine
        emitted.sort(key=lambda x: (x[2].ts_us, x[0], x[1]))
        return [x[2] for x in emitted]

    def _pass(self, rows: list[Row]) -> tuple[list[tuple[int, int, Transition]], list[Reading], Record]:
        rows = sorted(rows, key=lambda r: (r[1], r[0], r[2], r[4]))
        undo = self.log.before_pass({r[0] for r in rows})
        readings = []
        for i, (d, m, t, v, s) in enumerate(rows):
            sid = int(self.table.series_base[d]) + int(self.table.slot[self.table.device_class[d], m])
            pv, pt, _ = self.state.series.get(sid, (math.nan, None, -1))
            te = t if pt is None else max(t, pt)
            readings.append(Reading(d, m, t, te, v, s, pv, pt, i))
            self.state.series[sid] = (v, te, s)
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
                grade_move(before, after),
                r.te,
                r.value,
                r.seq,
                rule.alert_class,
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
                since = self.state.since[ri].get((key, k))
                since = (since if since is not None else te) if cond else None
                self.state.since[ri][(key, k)] = since
                need = hold if hold is not None else int(p.hold_us[k][inst])
                cond = since is not None and te - since >= need
            if cond:
                self.state.on[ri][(key, k)] = True
            elif reset:
                self.state.on[ri][(key, k)] = False
            if self.state.on[ri][(key, k)]:
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
                self.state.mark[ri][inst] = r.te
            return (r.te - (self.state.mark[ri][inst] or 0)) / 1e6
        window = r.te // int(p.window_us[inst])  # count
        if self.state.mark[ri].get(inst) != window:
            self.state.mark[ri][inst] = window
            self.state.total[ri][inst] = 0
        self.state.total[ri][inst] += int(min(max(r.value, 0.0), 2.0**31))
        return float(self.state.total[ri][inst])

    def _level_rule(self, ri: int, rule: Rule, readings: list[Reading]) -> list[tuple[int, int, Transition]]:
        out = []
        m = METRIC_INDEX[rule.metric or ""]
        for r in readings:
            inst = self.state.inst[ri].get(r.device)
            if r.metric != m or inst is None:
                continue
            grade = self._levels(ri, rule, inst, inst, self._signal(ri, rule, inst, r), r.te)
            if grade != self.state.active[ri][inst]:
                out.append(self._emit(ri, r.device, r, self.state.active[ri][inst], grade))
                self.state.active[ri][inst] = grade
        return out

    def _group(self, ri: int, rule: Rule, readings: list[Reading]) -> list[tuple[int, int, Transition]]:
        site = rule.scope == "site"
        metrics = {METRIC_INDEX[m] for m in rule.metrics}
        mine = [r for r in readings if r.metric in metrics and r.device in self.state.inst[ri]]

        def group_of(r: Reading) -> int:
            return int(self.table.device_site[r.device]) if site else self.state.inst[ri][r.device]

        mine.sort(key=lambda r: (group_of(r), r.te, r.device, r.metric, r.order))
        p, out = self.params[ri], []
        for r in mine:
            inst, group = self.state.inst[ri][r.device], group_of(r)
            for t, term in enumerate(rule.terms):
                if METRIC_INDEX[term.metric] != r.metric:
                    continue
                thr = float(p.term_at[t][inst])
                now, before = (
                    (r.value >= thr, r.pv >= thr) if term.direction == "above" else (r.value <= thr, r.pv <= thr)
                )
                if term.negate:
                    now, before = not now, not before
                self.state.counts[ri][(t, group)] += int(now) - int(before)
            holds = all(self.state.counts[ri][(t, group)] > 0 for t in range(len(rule.terms)))
            level = rule.levels[0]
            hold = 0
            if level.for_s is not None:
                if site:
                    name = self.table.sites[group]
                    hold = round(self.overrides.get(name, {}).get(level.for_s.key, level.for_s.value) * 1e6)
                else:
                    hold = int(p.hold_us[0][inst])
            grade = self._levels(ri, rule, group, inst, 1.0 if holds else 0.0, r.te, hold)
            if grade != self.state.active[ri][group]:
                out.append(self._emit(ri, group if site else r.device, r, self.state.active[ri][group], grade))
                self.state.active[ri][group] = grade
        return out

    def _anomaly(self, ri: int, rule: Rule, readings: list[Reading]) -> list[tuple[int, int, Transition]]:
        """One reading at a time: the device's latest value of each feature metric makes a row; the model's
        detector scores it against the device's earlier rows; the signal is the trailing mean of the statistics
        over the model's smoothing, divided by its limit (NaN before every feature is known or while warming up)."""
        model = self.models.get(ri)
        if model is None:
            return []
        features = [METRIC_INDEX[m] for m in rule.features]
        mine = [r for r in readings if r.metric in features and r.device in self.state.inst[ri]]
        mine.sort(key=lambda r: (self.state.inst[ri][r.device], r.te, r.metric, r.order))
        out = []
        for r in mine:
            inst = self.state.inst[ri][r.device]
            latest = self.state.latest[ri][inst]
            latest[r.metric] = r.value
            signal = math.nan
            if all(m in latest for m in features):
                row = [latest[m] for m in features]
                history = self.state.scored_rows[ri][inst]
                history.append(row)
                # One row at a time through the offline scorer of this device (its windows and drift offset).
                scorer = self.state.scorers[ri].get(inst) or self.state.scorers[ri].setdefault(inst, Scorer(model))
                smoothed = float(scorer.score_batch(np.array([row])).statistic[0])
                if len(history) > model.warmup_rows:
                    signal = smoothed / model.limit
            scored = Reading(r.device, r.metric, r.ts, r.te, signal, r.seq, r.pv, r.pt, r.order)
            grade = self._levels(ri, rule, inst, inst, signal, r.te)
            if grade != self.state.active[ri][inst]:
                out.append(self._emit(ri, r.device, scored, self.state.active[ri][inst], grade))
                self.state.active[ri][inst] = grade
        return out

    def _fresh(self, ri: int, rule: Rule, readings: list[Reading]) -> list[tuple[int, int, Transition]]:
        first: dict[int, Reading] = {}
        for r in readings:
            inst = self.state.inst[ri].get(r.device)
            if inst is None or self.state.active[ri][inst] == 0:
                continue
            old = first.get(r.device)
            if old is None or (r.te, r.seq, r.metric) < (old.te, old.seq, old.metric):
                first[r.device] = r
        out = []
        for d, r in first.items():
            inst = self.state.inst[ri][d]
            out.append(self._emit(ri, d, r, self.state.active[ri][inst], 0))
            self.state.active[ri][inst] = 0
        return out

    def tick(self, now_us: int) -> list[Transition]:
        out = []
        for ri, rule in enumerate(self.rules.rules):
            if rule.kind != "staleness":
                continue
            for d, inst in self.state.inst[ri].items():
                if d not in self.state.frontier:
                    continue
                age = float(now_us - self.state.frontier[d])
                grade = 0
                for k, level in enumerate(rule.levels):
                    if age >= float(self.params[ri].at[k][inst]):
                        grade = level.grade
                before = self.state.active[ri][inst]
                if grade > before:
                    self.log.before_tick(ri, d, inst)
                    self.state.active[ri][inst] = grade
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
                                grade_move(before, grade),
                                now_us,
                                age / 1e6,
                                -1,
                                rule.alert_class,
                            ),
                        )
                    )
        out.sort(key=lambda x: (x[2].ts_us, x[0], x[1]))
        return [x[2] for x in out]
