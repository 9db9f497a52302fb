"""The engine side of putting late readings back in order: rewind devices, re-evaluate, send corrections.

:class:`LateReadings` is mixed into :class:`~sentinel.engine.engine.Engine`; the log it works on (records,
journal of old values, bounds) and the rules it follows are in :mod:`sentinel.engine.rewind`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.live import AnomalyRules
from sentinel.engine.devices import DeviceTable
from sentinel.engine.evaluate import SortedBatch
from sentinel.engine.model import RuleSet
from sentinel.engine.params import NEVER
from sentinel.engine.rewind import Field, RewindLog, Rewound, Sent, Undo
from sentinel.engine.state import Journal, RuleState, SeriesState
from sentinel.engine.transitions import Piece, Transitions

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
PIECE_COLUMNS = ("subject", "device", "from_grade", "to_grade", "ts_us", "value", "seq")


class LateReadings:
    """Rewind, replay and correction steps of :meth:`Engine.process` (state lives on the engine)."""

    rules: RuleSet
    table: DeviceTable
    states: dict[str, RuleState]
    series: SeriesState
    anomaly: AnomalyRules
    rule_ids: tuple[str, ...]
    site_scope: tuple[bool, ...]
    stats: Counter[str]
    rewind: RewindLog
    journal: Journal | None
    _members: dict[tuple[str, ...], I64]
    _model_loads: int

    def _refresh_models(self) -> None:
        self.anomaly.refresh()
        if self.anomaly.loads != self._model_loads:  # fresh windows: older batches cannot be undone onto them
            self._model_loads = self.anomaly.loads
            self._forget()

    def _forget(self) -> None:
        self.rewind.forget(self.series.frontier)
        if self.journal is not None:
            self.journal.clear()

    def _rewind(self, late_dev: I64, late_ts: I64) -> Rewound | None:
        """Restore the late readings' devices to before the oldest logged batch they precede; return what to
        re-evaluate with the batch, or None when no logged batch is newer (nothing to undo)."""
        late_min = np.full(len(self.table), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(late_min, late_dev, late_ts)
        start = self.rewind.first_needed(late_min)
        if start is None:
            return None
        devices = np.zeros(len(self.table), dtype=np.bool_)
        devices[late_dev] = True
        sites = np.zeros(len(self.table.sites), dtype=np.bool_)
        if any(self.site_scope):  # a site's composite state sums its devices: they rewind together
            sites[self.table.device_site[late_dev]] = True
            devices |= sites[self.table.device_site]
        grades = self._grades(devices, sites)
        sent = self.rewind.sent_keys(start, devices, sites)
        # Writes since the last batch (ticks) are the newest: undone first, and the rewound devices' entries leave
        # the journal (their state now starts from before the log's batch, which this batch's record takes over).
        assert self.journal is not None  # a log with records implies journalling
        pending = self._undo_of(self.journal)
        self._apply([u.keep(u.mine(devices, sites)) for u in reversed(pending)])
        rest = [u.keep(~u.mine(devices, sites)) for u in pending]
        self.journal[:] = [(u.field, u.row, u.index, u.saved) for u in rest]
        undos, replay = self.rewind.rewind(start, devices, sites)
        self._apply(undos)
        self.stats["rewinds"] += 1
        self.stats["late"] += len(late_dev)
        self.stats["replayed"] += len(replay[0])
        return Rewound(devices, sites, grades, sent, replay, int(late_ts.min()))

    def _grades(self, devices: B, sites: B) -> list[tuple[I64, I64, npt.NDArray[np.int8]]]:
        """Per rule: (subjects, instances, active grade) of the rewound devices or sites, before the rewind."""
        out = []
        for ri, rule in enumerate(self.rules.rules):
            if self.site_scope[ri]:
                subject = np.flatnonzero(sites).astype(np.int64)
                inst = subject
            else:
                pop = self.table.population(rule.device_classes)
                subject = np.flatnonzero(devices & (pop >= 0)).astype(np.int64)
                inst = pop[subject].astype(np.int64)
            out.append((subject, inst, self.states[rule.id].active[inst].copy()))
        return out

    def _drop_sent(self, pieces: list[Piece], rw: Rewound, last: dict[tuple[int, int], int]) -> list[Piece]:
        """Leave out re-evaluated transitions of the rewound subjects that were already sent; note in ``last``
        the grade of the last one sent per (rule, subject)."""
        kept: list[Piece] = []
        for piece in pieces:
            site = self.site_scope[piece.rule]
            mine = rw.sites[piece.subject] if site else rw.devices[piece.subject]
            rows = np.ones(len(piece.subject), dtype=np.bool_)
            for i in np.flatnonzero(mine).tolist():
                key = (
                    piece.rule,
                    int(piece.subject[i]),
                    int(piece.device[i]),
                    int(piece.from_grade[i]),
                    int(piece.to_grade[i]),
                    int(piece.ts_us[i]),
                    int(piece.seq[i]),
                )
                if key in rw.sent:
                    rows[i] = False
                else:  # rows of a subject come in evaluation (device time) order: the last one is the newest
                    last[(piece.rule, key[1])] = int(piece.to_grade[i])
            kept.append(Piece(piece.rule, *(getattr(piece, n)[rows] for n in PIECE_COLUMNS)))
        return kept

    def _fixups(
        self, rw: Rewound, last: dict[tuple[int, int], int], b: SortedBatch, b_early: SortedBatch | None
    ) -> list[Piece]:
        """One transition per rewound rule and subject whose last sent grade is not the grade now in effect, at
        the subject's newest reading of the last pass (of the first pass when it has none there)."""
        out: list[Piece] = []
        newest: dict[bool, list[tuple[SortedBatch, I64]]] = {}
        for ri, (subject, inst, before) in enumerate(rw.grades):
            now = self.states[self.rule_ids[ri]].active[inst]
            sent_grade = before.copy()
            for j, s in enumerate(subject.tolist()):
                if (ri, s) in last:
                    sent_grade[j] = last[(ri, s)]
            moved = np.flatnonzero(sent_grade != now)
            if len(moved) == 0:
                continue
            site = self.site_scope[ri]
            if site not in newest:
                n = len(self.table.sites) if site else len(self.table)
                newest[site] = [
                    (batch, self._newest_by(self._group_of(batch, site), batch, n))
                    for batch in (b, b_early)
                    if batch is not None
                ]
            for batch, where in newest[site]:  # the last pass first
                pos = where[subject[moved]]
                here = pos >= 0
                if here.any():
                    m, p = moved[here], pos[here]
                    reading = (batch.te[p], batch.value[p], batch.seq[p])
                    out.append(Piece(ri, subject[m], batch.device[p], sent_grade[m], now[m].copy(), *reading))
                moved = moved[~here]
        return out

    def _group_of(self, b: SortedBatch, site: bool) -> I64:
        return self.table.device_site[b.device].astype(np.int64) if site else b.device.copy()

    @staticmethod
    def _newest_by(group: I64, b: SortedBatch, n: int) -> I64:
        """Per group (device or site), the batch position of its newest reading: the greatest (effective time,
        seq, metric, device); -1 for groups without readings."""
        out = np.full(n, -1, dtype=np.int64)
        if len(group) == 0:
            return out
        order = np.lexsort((b.device, b.metric, b.seq, b.te, group))
        last = np.ones(len(order), dtype=np.bool_)
        last[:-1] = group[order[1:]] != group[order[:-1]]
        out[group[order[last]]] = order[last]
        return out

    def _newest(self, dev: I64, ts: I64) -> tuple[I64, I64]:
        """Devices of the batch and the newest device time of each (a scatter over all devices: unlike
        ``np.unique`` it needs no sort, which cost a sixth of the batch at 100k series)."""
        newest = np.full(len(self.table), NEVER, dtype=np.int64)
        np.maximum.at(newest, dev, ts)
        touched = np.flatnonzero(newest != NEVER).astype(np.int64)
        return touched, newest[touched]

    def _array(self, field: Field) -> npt.NDArray[np.generic]:
        kind, ri, name = field
        if kind == "series":
            array: npt.NDArray[np.generic] = getattr(self.series, name)
        elif kind == "rule":
            array = getattr(self.states[self.rule_ids[ri]], name)
        else:
            array = getattr(self.anomaly.live[ri].windows, name)
        return array

    def _undo_of(self, journal: Journal) -> list[Undo]:
        """Journal entries (old values in write order) with the device or site that owns each index."""
        out = []
        for (kind, ri, name), row, index, old in journal:
            if kind == "rule" and self.site_scope[ri]:
                owner, site = index, True
            else:
                classes = self.rules.rules[ri].device_classes
                if classes not in self._members:
                    self._members[classes] = self.table.members(classes)
                owner, site = self._members[classes][index], False
            out.append(Undo((kind, ri, name), row, index, owner, site, old))
        return out

    def _apply(self, undos: list[Undo]) -> None:
        """Put old values back, in the order given (newest write first)."""
        for u in undos:
            array = self._array(u.field)
            if u.row >= 0:
                array[u.row, u.index] = u.saved
            else:
                array[u.index] = u.saved

    def _sent(self, out: Transitions) -> Sent:
        site = np.array(self.site_scope, dtype=np.bool_)[out.rule] if len(out) else np.zeros(0, dtype=np.bool_)
        return Sent(
            out.rule.astype(np.int64),
            out.subject.astype(np.int64),
            site,
            out.device.astype(np.int64),
            out.from_grade.astype(np.int64),
            out.to_grade.astype(np.int64),
            out.ts_us,
            out.seq,
        )
