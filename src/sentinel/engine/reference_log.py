"""The reference evaluator's rewind log: late readings put back in order with dictionaries and deep copies.

Written from the rules in :mod:`sentinel.engine.rewind`, not from its array code: before every pass the whole
state of each device it touches is copied (and, before a tick changes a device, that device's state), so a rewind
restores exactly the state before the oldest logged pass it undoes. :class:`ReferenceLog` is mixed into
:class:`~sentinel.engine.reference.ReferenceEngine`.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sentinel.engine.catalog import GRADE_NAMES
from sentinel.engine.devices import DeviceTable
from sentinel.engine.model import GROUP_KINDS, RuleSet
from sentinel.engine.transitions import Transition

if TYPE_CHECKING:
    from sentinel.engine.anomaly.model import Scorer


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


class ReferenceLog:
    """Rewind log and corrections of :class:`~sentinel.engine.reference.ReferenceEngine` (state lives there)."""

    rules: RuleSet
    table: DeviceTable
    lateness_us: int
    rewind_max_readings: int
    records: deque[Record]
    pending: dict[tuple[str, int, int], object]
    held: int
    floor: dict[int, int]
    frontier: dict[int, int]
    inst: list[dict[int, int]]
    series: dict[int, tuple[float, int, int]]
    active: list[dict[int, int]]
    on: list[dict[tuple[int, int], bool]]
    since: list[dict[tuple[int, int], int | None]]
    mark: list[dict[int, int | None]]
    total: list[dict[int, int]]
    counts: list[dict[tuple[int, int], int]]
    latest: list[dict[int, dict[int, float]]]
    scored_rows: list[dict[int, list[list[float]]]]
    scorers: list[dict[int, Scorer]]
    _emit: Callable[..., tuple[int, int, Transition]]

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
            got["scorer"] = copy.deepcopy(self.scorers[ri].get(key))
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
            put(self.scorers[ri], key, saved["scorer"])

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
            if done or self.held > self.rewind_max_readings:
                if not done:
                    for d, t in rec.newest.items():
                        self.floor[d] = max(self.floor.get(d, t), t)
                self.records.popleft()
                self.held -= len(rec.rows)
                continue
            return
