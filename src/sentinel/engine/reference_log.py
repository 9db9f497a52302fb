"""The reference evaluator's rewind log: late readings put back in order with dictionaries and deep copies.

Written from the rules in :mod:`sentinel.engine.rewind`, not from its array code: before every pass the whole
state of each device it touches is copied (and, before a tick changes a device, that device's state), so a rewind
restores exactly the state before the oldest logged pass it undoes. :class:`ReferenceLog` is a part of
:class:`~sentinel.engine.reference.ReferenceEngine`, given the engine's :class:`ReferenceState` to copy and restore.
"""

from __future__ import annotations

import copy
from collections import defaultdict, deque
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
#: The reference engine's transition for (rule, subject) at a reading, from grade → to grade.
Emit = Callable[[int, int, Reading, int, int], tuple[int, int, Transition]]


@dataclass
class ReferenceState:
    """Every state entry of the reference evaluator, per rule where it is a list. The evaluator reads and writes
    it; the log copies parts of it before a pass and puts them back on a rewind."""

    frontier: dict[int, int]  # device → newest device time evaluated
    inst: list[dict[int, int]]  # device → instance of the rule's population
    series: dict[int, tuple[float, int, int]]  # sid → (value, te, seq)
    active: list[dict[int, int]]
    on: list[dict[tuple[int, int], bool]]
    since: list[dict[tuple[int, int], int | None]]
    mark: list[dict[int, int | None]]
    total: list[dict[int, int]]
    counts: list[dict[tuple[int, int], int]]
    # Anomaly rules: per instance the latest feature values, the scored rows and the detector statistics so far.
    latest: list[dict[int, dict[int, float]]]
    scored_rows: list[dict[int, list[list[float]]]]
    scorers: list[dict[int, Scorer]]

    @classmethod
    def empty(cls, n_rules: int) -> ReferenceState:
        return cls(
            frontier={},
            inst=[{} for _ in range(n_rules)],
            series={},
            active=[defaultdict(int) for _ in range(n_rules)],
            on=[defaultdict(bool) for _ in range(n_rules)],
            since=[{} for _ in range(n_rules)],
            mark=[{} for _ in range(n_rules)],
            total=[defaultdict(int) for _ in range(n_rules)],
            counts=[defaultdict(int) for _ in range(n_rules)],
            latest=[defaultdict(dict) for _ in range(n_rules)],
            scored_rows=[defaultdict(list) for _ in range(n_rules)],
            scorers=[{} for _ in range(n_rules)],
        )


class ReferenceLog:
    """Rewind log and corrections of :class:`~sentinel.engine.reference.ReferenceEngine`, over the state it is
    given: :meth:`before_pass` and :meth:`before_tick` copy what a pass or a tick is about to change, :meth:`push`
    logs a pass, :meth:`rewind` restores the late readings' devices, :meth:`drop_sent` and :meth:`fixups` make the
    corrections (``emit`` builds their transitions), :meth:`forget` is :meth:`Engine.restore`'s."""

    def __init__(
        self, rules: RuleSet, table: DeviceTable, state: ReferenceState, lateness_us: int, limit: int, emit: Emit
    ) -> None:
        self.rules, self.table, self.state = rules, table, state
        self.lateness_us = lateness_us
        self.limit = limit
        self.emit = emit
        self.records: deque[Record] = deque()
        self.pending: dict[tuple[str, int, int], object] = {}  # state before the ticks since the last batch
        self.held = 0
        self.floor: dict[int, int] = {}

    def forget(self) -> None:
        """What :meth:`Engine.restore` does to the log: nothing before now can be rewound."""
        self.records.clear()
        self.pending = {}
        self.held = 0
        for d, t in self.state.frontier.items():
            self.floor[d] = max(self.floor.get(d, t), t)

    def before_pass(self, devices: set[int]) -> dict[tuple[str, int, int], object]:
        """The undo entries of a pass over these devices (with those of the ticks since the last pass)."""
        undo = self._capture(devices) | self.pending  # before the ticks is before the batch
        self.pending = {}
        return undo

    def before_tick(self, ri: int, device: int, inst: int) -> None:
        """A tick is about to change this rule instance: keep its state from before the first such change."""
        self.pending.setdefault(("rule", ri, device), self._state_of(ri, inst))

    def push(self, record: Record) -> None:
        self.records.append(record)
        self.held += len(record.rows)
        self._trim()

    def key(self, ri: int, subject: int, t: Transition) -> tuple[int, ...]:
        device = self.table.index[t.device_id]
        grades = (GRADE_NAMES.index(t.from_grade), GRADE_NAMES.index(t.to_grade))
        return (ri, subject, device, *grades, t.ts_us, t.seq)

    def _site_rule(self, ri: int) -> bool:
        rule = self.rules.rules[ri]
        return rule.scope == "site" and rule.kind in GROUP_KINDS

    def _owned(self, key: tuple[int, ...], devices: set[int], sites: set[int]) -> bool:
        return key[1] in (sites if self._site_rule(key[0]) else devices)

    def _state_of(self, ri: int, key: int) -> dict[str, object]:
        """Every state entry of one rule instance (or site group), copied; missing entries as None markers."""
        rule = self.rules.rules[ri]
        got: dict[str, object] = {"active": self.state.active[ri].get(key)}
        for k in range(len(rule.levels)):
            got[f"on{k}"] = self.state.on[ri].get((key, k))
            got[f"since{k}"] = self.state.since[ri].get((key, k), MISSING)
        for t in range(len(rule.terms)):
            got[f"counts{t}"] = self.state.counts[ri].get((t, key))
        if not self._site_rule(ri):
            got["mark"] = self.state.mark[ri].get(key, MISSING)
            got["total"] = self.state.total[ri].get(key)
            got["latest"] = copy.deepcopy(self.state.latest[ri].get(key))
            got["rows"] = copy.deepcopy(self.state.scored_rows[ri].get(key))
            got["scorer"] = copy.deepcopy(self.state.scorers[ri].get(key))
        return got

    def _put_state(self, ri: int, key: int, saved: dict[str, object]) -> None:
        def put(table: dict[Any, Any], k: Any, value: object) -> None:
            if value is None or value is MISSING:
                table.pop(k, None)
            else:
                table[k] = copy.deepcopy(value)

        rule = self.rules.rules[ri]
        put(self.state.active[ri], key, saved["active"])
        for k in range(len(rule.levels)):
            put(self.state.on[ri], (key, k), saved[f"on{k}"])
            put(self.state.since[ri], (key, k), saved[f"since{k}"])
            if saved[f"since{k}"] is None:  # a stored None ("condition not holding") is a value
                self.state.since[ri][(key, k)] = None
        for t in range(len(rule.terms)):
            put(self.state.counts[ri], (t, key), saved[f"counts{t}"])
        if not self._site_rule(ri):
            put(self.state.mark[ri], key, saved["mark"])
            if saved["mark"] is None:
                self.state.mark[ri][key] = None
            put(self.state.total[ri], key, saved["total"])
            put(self.state.latest[ri], key, saved["latest"])
            put(self.state.scored_rows[ri], key, saved["rows"])
            put(self.state.scorers[ri], key, saved["scorer"])

    def _capture(self, devices: set[int]) -> dict[tuple[str, int, int], object]:
        """Before a batch: the series of these devices, their rule instances, and their sites' group state."""
        undo: dict[tuple[str, int, int], object] = {}
        for d in devices:
            base, cls = int(self.table.series_base[d]), int(self.table.device_class[d])
            sids = [base + i for i in range(int(self.table.block[cls]))]
            undo[("series", -1, d)] = {sid: self.state.series.get(sid) for sid in sids}
            for ri in range(len(self.rules.rules)):
                inst = self.state.inst[ri].get(d)
                if inst is None:
                    continue
                if self._site_rule(ri):
                    site = int(self.table.device_site[d])
                    undo[("site", ri, site)] = self._state_of(ri, site)
                else:
                    undo[("rule", ri, d)] = self._state_of(ri, inst)
        return undo

    def _restore(self, entry: tuple[str, int, int], saved: object) -> None:
        where, ri, owner = entry
        if where == "series":
            assert isinstance(saved, dict)
            for sid, value in saved.items():
                if value is None:
                    self.state.series.pop(sid, None)
                else:
                    self.state.series[sid] = value
        elif where == "site":
            assert isinstance(saved, dict)
            self._put_state(ri, owner, saved)
        else:
            assert isinstance(saved, dict)
            self._put_state(ri, self.state.inst[ri][owner], saved)

    def rewind(self, late: list[tuple[int, int, int, float, int]]) -> Rewind | None:
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
                grades.append((subjects, [self.state.active[ri][s] for s in subjects]))
            else:
                subjects = sorted(d for d in devices if d in self.state.inst[ri])
                grades.append((subjects, [self.state.active[ri][self.state.inst[ri][d]] for d in subjects]))
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

    def drop_sent(
        self, out: list[tuple[int, int, Transition]], rw: Rewind, last: dict[tuple[int, int], int]
    ) -> list[tuple[int, int, Transition]]:
        devices, sites, _, sent, _, _ = rw
        kept = []
        for ri, subject, t in out:
            key = self.key(ri, subject, t)
            if self._owned(key, devices, sites):
                if key in sent:
                    continue
                last[(ri, subject)] = GRADE_NAMES.index(t.to_grade)
            kept.append((ri, subject, t))
        return kept

    def fixups(
        self, rw: Rewind, last: dict[tuple[int, int], int], readings: list[Reading], early: list[Reading]
    ) -> list[tuple[int, int, Transition]]:
        out = []
        for ri, (subjects, before) in enumerate(rw[2]):
            for s, grade in zip(subjects, before, strict=True):
                slot = s if self._site_rule(ri) else self.state.inst[ri][s]
                sent_grade, now = last.get((ri, s), grade), self.state.active[ri][slot]
                if sent_grade == now:
                    continue
                for source in (readings, early):  # the last pass first
                    if self._site_rule(ri):
                        mine = [r for r in source if int(self.table.device_site[r.device]) == s]
                    else:
                        mine = [r for r in source if r.device == s]
                    if mine:
                        r = max(mine, key=lambda r: (r.te, r.seq, r.metric, r.device))
                        out.append(self.emit(ri, s, r, sent_grade, now))
                        break
        return out

    def _trim(self) -> None:
        while self.records:
            rec = self.records[0]
            done = all(t <= self.state.frontier[d] - self.lateness_us for d, t in rec.newest.items())
            if done or self.held > self.limit:
                if not done:
                    for d, t in rec.newest.items():
                        self.floor[d] = max(self.floor.get(d, t), t)
                self.records.popleft()
                self.held -= len(rec.rows)
                continue
            return
