"""The engine side of putting late readings back in order: rewind devices, re-evaluate, send corrections.

:class:`Rewinder` is a part the :class:`~sentinel.engine.engine.Engine` holds while it keeps a rewind log
(``rewind_max_readings > 0``). It is given the engine's state objects at construction (it restores them in place)
and is driven through a small interface: :meth:`Rewinder.rewind` before a batch that holds late readings,
:meth:`Rewinder.record` inside each evaluation pass (before the series state is written),
:meth:`Rewinder.push` after an in-order batch, :meth:`Rewinder.replay` for a rewound one, and
:meth:`Rewinder.forget` / :meth:`Rewinder.check_models` / :meth:`Rewinder.devices_added` when the engine's
state changes under the log. The log it works on (records, journal of old values, bounds) and the rules it
follows are in :mod:`sentinel.engine.rewind`.

Why corrections (only what was not sent, plus one move to the grade now) rather than re-sending everything the rewind
re-evaluated with a "grade now" per subject and letting the lifecycle drop what it has seen by key: on
bench/engine.py's stream with 1 % of readings a batch late, the repeats alone would hand the lifecycle 1.7 to 2.7
times the transitions, up to 2.5 to 3 times with the "grade now" ones (bench/late_corrections.py: 26,494 sent today
against 70,970 + up to 9,791 at 1k series, 22,032 against 37,046 + up to 17,278 at 100k), each one a database lookup
there, and every other reader of transitions (the simulator's report, counters) would have to deduplicate. And without
the keys sent, the "grade now" could not be left out where nothing changed: a repeat (dropped by the lifecycle) can
end a subject's sequence after new ones, so it would be needed for every re-evaluated subject, and the lifecycle would
need a "set the grade if it differs" input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.live import AnomalyRules
from sentinel.engine.devices import DeviceTable
from sentinel.engine.evaluate import SortedBatch
from sentinel.engine.model import RuleSet
from sentinel.engine.params import NEVER
from sentinel.engine.rewind import BatchRecord, Columns, Field, RewindLog, Rewound, Sent, Undo
from sentinel.engine.state import Journal, RuleState, SeriesState
from sentinel.engine.transitions import Piece, Transitions

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
PIECE_COLUMNS = ("subject", "device", "from_grade", "to_grade", "ts_us", "value", "seq")
#: One evaluation pass of the engine over readings in any order: its pieces, the sorted batch and its record.
Pass = Callable[[Columns], tuple[list[Piece], SortedBatch, BatchRecord | None]]
#: The engine's merge of pieces into ordered transitions.
Merge = Callable[[list[Piece]], Transitions]


class Rewinder:
    """Rewind, replay and correction steps of :meth:`Engine.process` over the engine's state objects."""

    def __init__(
        self,
        rules: RuleSet,
        table: DeviceTable,
        states: dict[str, RuleState],
        series: SeriesState,
        anomaly: AnomalyRules,
        site_scope: tuple[bool, ...],
        stats: Counter[str],
        lateness_us: int,
        limit: int,
    ) -> None:
        self.rules, self.table, self.states, self.series, self.anomaly = rules, table, states, series, anomaly
        self.rule_ids = tuple(r.id for r in rules.rules)
        self.site_scope = site_scope
        self.stats = stats
        self.log = RewindLog(lateness_us, limit)
        # Old values of every state write since the last pass; one list that every rule state and the anomaly
        # windows append to (they journal only while it is set: an engine without a log pays nothing).
        self.journal: Journal = []
        for ri, rule in enumerate(rules.rules):
            states[rule.id].rule_index = ri
            states[rule.id].journal = self.journal
        anomaly.journal = self.journal
        self._model_loads = anomaly.loads
        self._members: dict[tuple[str, ...], I64] = {}  # instance → device, per population (journal owners)

    @property
    def floor(self) -> I64:
        """Per device: a late reading older than this is not put back in order (the log no longer covers it)."""
        return self.log.floor

    def devices_added(self, n_devices: int) -> None:
        self._members.clear()  # the instance → device maps grow with the populations
        self.log.grow(n_devices)

    def check_models(self) -> None:
        """After the engine refreshed its models: fresh windows cannot have older batches undone onto them."""
        if self.anomaly.loads != self._model_loads:
            self._model_loads = self.anomaly.loads
            self.forget()

    def forget(self) -> None:
        """Nothing before now can be rewound (after a restore, or a model reload)."""
        self.log.forget(self.series.frontier)
        self.journal.clear()

    def record(self, b: SortedBatch, tail_sid: I64, cols: Columns) -> BatchRecord:
        """The log's record of an evaluation pass over ``cols`` (sorted as ``b``; ``tail_sid``: the series of each
        segment's last reading): the journal of the pass and the series' old last values. Called after the rules
        ran and before the series state is written; its ``sent`` is filled in by :meth:`push` / :meth:`replay`."""
        undo = self._undo_of(self.journal)
        self.journal.clear()
        owner = b.device[b.segments.tails]
        for name in ("last_value", "last_ts", "last_seq"):
            old = getattr(self.series, name)[tail_sid]
            undo.append(Undo(("series", -1, name), -1, tail_sid, owner, False, old))
        dev, met, ts, val, sq = cols
        touched, max_ts = self._newest(dev, ts)
        return BatchRecord(touched, max_ts, dev, met, ts, val, sq, undo, Sent.empty())

    def push(self, record: BatchRecord, out: Transitions) -> None:
        """Log an in-order batch's record with the transitions it emitted."""
        record.sent = self._sent(out)
        self.log.push(record, self.series.frontier)

    def replay(self, batch: Columns, rw: Rewound, evaluate: Pass, merge: Merge) -> Transitions:
        """Evaluate a rewound batch and return its corrections (the contract is in :mod:`sentinel.engine.engine`).

        Two passes, so that the log's records stay short: first the replayed readings from before the earliest
        late one (already in order: they re-derive what was sent), then the rest with the batch."""
        early = rw.replay[2] < rw.split
        last: dict[tuple[int, int], int] = {}
        records: list[tuple[BatchRecord | None, list[Piece]]] = []
        kept: list[Piece] = []
        b_early: SortedBatch | None = None
        if early.any():
            pieces, b_early, record = evaluate(tuple(c[early] for c in rw.replay))  # type: ignore[arg-type]
            first = self._drop_sent(pieces, rw, last)
            records.append((record, first))
            kept += first
        rest = tuple(np.concatenate((c, r[~early])) for c, r in zip(batch, rw.replay, strict=True))
        pieces, b_late, record = evaluate(rest)  # type: ignore[arg-type]
        second = self._drop_sent(pieces, rw, last) + self._fixups(rw, last, b_late, b_early)
        records.append((record, second))
        kept += second
        for i, (record, mine) in enumerate(records):
            assert record is not None  # a rewinder implies a record per pass
            sent = self._sent(merge(mine))
            # Keys sent before stay with the record covering their device time, for the next rewind to find.
            before = rw.sent if len(records) == 1 else {k for k in rw.sent if (k[5] < rw.split) == (i == 0)}
            record.sent = sent.concat(Sent.of_keys(before, self.site_scope)) if before else sent
            self.log.push(record, self.series.frontier)
        return merge(kept)

    def rewind(self, late_dev: I64, late_ts: I64) -> Rewound | None:
        """Restore the late readings' devices to before the oldest logged batch they precede; return what to
        re-evaluate with the batch, or None when no logged batch is newer (nothing to undo)."""
        late_min = np.full(len(self.table), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(late_min, late_dev, late_ts)
        start = self.log.first_needed(late_min)
        if start is None:
            return None
        devices = np.zeros(len(self.table), dtype=np.bool_)
        devices[late_dev] = True
        sites = np.zeros(len(self.table.sites), dtype=np.bool_)
        if any(self.site_scope):  # a site's composite state sums its devices: they rewind together
            sites[self.table.device_site[late_dev]] = True
            devices |= sites[self.table.device_site]
        grades = self._grades(devices, sites)
        sent = self.log.sent_keys(start, devices, sites)
        # Writes since the last batch (ticks) are the newest: undone first, and the rewound devices' entries leave
        # the journal (their state now starts from before the log's batch, which this batch's record takes over).
        pending = self._undo_of(self.journal)
        self._apply([u.keep(u.mine(devices, sites)) for u in reversed(pending)])
        rest = [u.keep(~u.mine(devices, sites)) for u in pending]
        self.journal[:] = [(u.field, u.row, u.index, u.saved) for u in rest]
        undos, replay = self.log.rewind(start, devices, sites)
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
        where, ri, name = field
        if where == "series":
            array: npt.NDArray[np.generic] = getattr(self.series, name)
        elif where == "rule":
            array = getattr(self.states[self.rule_ids[ri]], name)
        else:
            array = getattr(self.anomaly.live[ri].windows, name)
        return array

    def _undo_of(self, journal: Journal) -> list[Undo]:
        """Journal entries (old values in write order) with the device or site that owns each index."""
        out = []
        for (where, ri, name), row, index, old in journal:
            if where == "rule" and self.site_scope[ri]:
                owner, site = index, True
            else:
                classes = self.rules.rules[ri].device_classes
                if classes not in self._members:
                    self._members[classes] = self.table.members(classes)
                owner, site = self._members[classes][index], False
            out.append(Undo((where, ri, name), row, index, owner, site, old))
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
