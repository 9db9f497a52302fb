"""Late readings put back in device-time order: a log of recent batches, so a device can be rewound and re-run.

Why: DESIGN.md asks that a reading within the lateness bound be evaluated *in order* per device, and a safety
alarm must not wait for the bound to pass. So the engine evaluates every batch at once (speculatively) and keeps,
for the batches whose readings a late reading could still precede, what it needs to undo them per device:

* the readings it evaluated (device, metric, device time, value, seq),
* the old values of every state write it made (series, rule instances, sites of site-scope rules, anomaly
  windows): a journal kept by :meth:`RuleState.put <sentinel.engine.state.RuleState.put>` and the window
  writes, so its cost follows what a batch changes, not how many devices it touched; the writes of the ticks
  since the previous batch join it,
* the transitions it emitted.

When a batch holds a reading older than one its device already evaluated in an earlier batch (``ts <`` the device's
frontier), the engine finds the oldest logged batch holding a reading of that device newer than the late one,
restores the device's state (and, when site-scope rules exist, that of every device of its site) to what it was
before that batch (undoing the journals newest first), and evaluates the device's logged readings since then
together with the new batch, in device-time order. It does so in two passes, each logged as a record of its own:
first the replayed readings older than the earliest late reading (already in order, they re-derive what was
sent), then the rest with the batch; so a device whose readings are late in every batch replays about one batch,
not everything since the bound. The rewound devices' entries leave the older records.

What is emitted (see :mod:`sentinel.engine.engine` for the contract): the re-evaluated transitions that were not
emitted before, and, where the grade now in effect differs from the last grade emitted for that rule and subject,
one transition from the emitted grade to the re-evaluated one at the subject's newest reading of the last pass (of
the first pass when it has none there). Transitions already sent are never withdrawn; the lifecycle deduplicates an
identical transition by its key.

Bounds: a record is dropped once every device in it has moved on past the lateness bound (its newest reading there
is older than frontier − lateness). ``limit`` caps the readings held; a record dropped for room raises the
devices' *floor*, and a late reading older than its device's floor is evaluated at the series' effective time
instead, not put back in order (counted as ``out_of_order``), as after a restart, where the log starts empty.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sentinel.engine.params import NEVER

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: (device, metric, device time µs, value, seq) of evaluated readings
Columns = tuple[I64, I64, I64, F64, I64]
#: ("series", -1, name) | ("rule", rule index, name) | ("anomaly", rule index, name)
Field = tuple[str, int, str]


@dataclass
class Undo:
    """Values one write replaced: ``array[(row,) index]`` held ``saved`` before it; ``owner`` is the device (or,
    for site-scope rule state, the site) of each index."""

    field: Field
    row: int  # row of a 2-D rule array (since, counts), -1 otherwise
    index: I64
    owner: I64
    site: bool
    saved: npt.NDArray[np.generic]  # one value (or, for anomaly windows, one block) per index

    def keep(self, rows: B) -> Undo:
        return Undo(self.field, self.row, self.index[rows], self.owner[rows], self.site, self.saved[rows])

    def mine(self, devices: B, sites: B) -> B:
        return sites[self.owner] if self.site else devices[self.owner]


@dataclass
class Sent:
    """Transitions emitted for a batch, as identity columns (what the lifecycle's key is made of)."""

    rule: I64
    subject: I64
    site: B  # subject is a site (site-scope rule)
    device: I64
    from_grade: I64
    to_grade: I64
    ts: I64
    seq: I64

    @classmethod
    def empty(cls) -> Sent:
        i64 = np.zeros(0, dtype=np.int64)
        return cls(i64, i64, np.zeros(0, dtype=np.bool_), i64, i64, i64, i64, i64)

    def mine(self, devices: B, sites: B) -> B:
        """Rows whose subject is one of these devices, or (site-scope rules) one of these sites."""
        out = np.zeros(len(self.rule), dtype=np.bool_)
        out[~self.site] = devices[self.subject[~self.site]]
        out[self.site] = sites[self.subject[self.site]]
        return out

    @classmethod
    def of_keys(cls, keys: set[tuple[int, ...]], site_scope: tuple[bool, ...]) -> Sent:
        cols = np.array(sorted(keys), dtype=np.int64).reshape(-1, 7).T
        site = np.array(site_scope, dtype=np.bool_)[cols[0]] if len(keys) else np.zeros(0, dtype=np.bool_)
        return cls(cols[0], cols[1], site, cols[2], cols[3], cols[4], cols[5], cols[6])

    def concat(self, other: Sent) -> Sent:
        return Sent(*(np.concatenate((getattr(self, n), getattr(other, n))) for n in self.__dataclass_fields__))

    def keys(self, rows: I64) -> set[tuple[int, ...]]:
        cols = (self.rule, self.subject, self.device, self.from_grade, self.to_grade, self.ts, self.seq)
        return set(zip(*(c[rows].tolist() for c in cols), strict=True))

    def select(self, rows: B) -> Sent:
        return Sent(*(getattr(self, n)[rows] for n in self.__dataclass_fields__))


@dataclass
class BatchRecord:
    devices: I64  # unique devices with readings evaluated in the batch
    max_ts: I64  # per device above: its newest device time in the batch
    dev: I64
    met: I64
    ts: I64
    val: F64
    seq: I64
    undo: list[Undo]
    sent: Sent

    def strip(self, devices: B, sites: B) -> None:
        """Remove what belongs to these devices (and, for site-scope state and transitions, these sites)."""
        keep = ~devices[self.devices]
        self.devices, self.max_ts = self.devices[keep], self.max_ts[keep]
        rows = ~devices[self.dev]
        self.dev, self.met, self.ts, self.val, self.seq = (
            self.dev[rows],
            self.met[rows],
            self.ts[rows],
            self.val[rows],
            self.seq[rows],
        )
        self.undo = [u.keep(~u.mine(devices, sites)) for u in self.undo]
        self.sent = self.sent.select(~self.sent.mine(devices, sites))


@dataclass
class Rewound:
    """What a rewind hands back to the batch: which devices and sites went back, their grades before (per rule:
    subjects, instances, grade), the keys of the transitions already sent for them, and the readings to replay."""

    devices: B
    sites: B
    grades: list[tuple[I64, I64, npt.NDArray[np.int8]]]
    sent: set[tuple[int, ...]]
    replay: Columns
    split: int  # the earliest late reading's device time: replayed readings before it go in a first pass


class RewindLog:
    """The records of recent batches, oldest first, and the per-device floor below which rewinding stops."""

    def __init__(self, lateness_us: int, limit: int) -> None:
        self.lateness_us = lateness_us
        self.limit = limit
        self.records: deque[BatchRecord] = deque()
        self.held = 0
        self.floor = np.zeros(0, dtype=np.int64)

    def nbytes(self) -> int:
        """Bytes held in the records' arrays (readings, old values, transitions sent)."""
        total = 0
        for rec in self.records:
            total += sum(a.nbytes for a in (rec.devices, rec.max_ts, rec.dev, rec.met, rec.ts, rec.val, rec.seq))
            total += sum(u.index.nbytes + u.owner.nbytes + u.saved.nbytes for u in rec.undo)
            total += sum(getattr(rec.sent, n).nbytes for n in rec.sent.__dataclass_fields__)
        return total

    def grow(self, n_devices: int) -> None:
        self.floor = np.concatenate((self.floor, np.full(n_devices - len(self.floor), NEVER, dtype=np.int64)))

    def forget(self, frontier: I64) -> None:
        """Nothing before now can be rewound (after a restore, or when a model changed under the windows)."""
        self.records.clear()
        self.held = 0
        self.floor = np.maximum(self.floor, frontier)

    def first_needed(self, late_min: I64) -> int | None:
        """Index of the oldest record holding a reading newer than its device's late reading (``late_min`` per
        device; int64 max for devices without one); None when no record does."""
        for i, rec in enumerate(self.records):
            if len(rec.devices) and bool((rec.max_ts > late_min[rec.devices]).any()):
                return i
        return None

    def rewind(self, start: int, devices: B, sites: B) -> tuple[list[Undo], Columns]:
        """Undo entries to apply newest first (records ``start``.. end), and the rows to replay as
        (dev, met, ts, val, seq) stacked; both for these devices/sites, which are stripped from the records."""
        undos: list[Undo] = []
        parts: list[tuple[I64, I64, I64, F64, I64]] = []
        for i in range(len(self.records) - 1, start - 1, -1):
            rec = self.records[i]
            for u in reversed(rec.undo):  # newest write first: the oldest old value is applied last
                rows = u.mine(devices, sites)
                if rows.any():
                    undos.append(u.keep(rows))
            take = devices[rec.dev]
            if take.any():
                parts.append((rec.dev[take], rec.met[take], rec.ts[take], rec.val[take], rec.seq[take]))
            before = len(rec.dev)
            rec.strip(devices, sites)
            self.held -= before - len(rec.dev)
        parts.reverse()
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return undos, (empty, empty, empty, np.zeros(0), empty)
        return undos, (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
            np.concatenate([p[3] for p in parts]),
            np.concatenate([p[4] for p in parts]),
        )

    def sent_keys(self, start: int, devices: B, sites: B) -> set[tuple[int, ...]]:
        """Identity keys of transitions emitted from record ``start`` on for these devices/sites."""
        keys: set[tuple[int, ...]] = set()
        for i in range(start, len(self.records)):
            s = self.records[i].sent
            keys |= s.keys(np.flatnonzero(s.mine(devices, sites)))
        return keys

    def push(self, record: BatchRecord, frontier: I64) -> None:
        self.records.append(record)
        self.held += len(record.dev)
        self._trim(frontier)

    def _trim(self, frontier: I64) -> None:
        while self.records:
            rec = self.records[0]
            done = rec.max_ts <= frontier[rec.devices] - self.lateness_us
            if done.all() or self.held > self.limit:
                if not done.all():  # dropped for room: these devices can no longer be rewound past it
                    np.maximum.at(self.floor, rec.devices, rec.max_ts)
                self.records.popleft()
                self.held -= len(rec.dev)
                continue
            return
