"""Duplicate filter by (device, seq): QoS 1 redelivery, gateway retries and replays are dropped, even across a
restart.

A message is a duplicate when a message with the same device and sequence number *and the same device time* was
already accepted. Comparing the time too keeps a device that restarted and reset its counter from being
silenced: its new message 0 carries a new time. Such a message (same device and seq, another time) is stored and
counted in :attr:`DuplicateFilter.conflicts` (``schemas/README``: a message is identified by device, seq *and* ts).

Keys move through two states. :meth:`DuplicateFilter.admit_many` checks messages against both the committed keys
and the keys of batches still being written, and marks them pending; :meth:`commit` makes a batch's keys permanent
once it is durable, :meth:`abort` forgets them when the write failed (the broker will redeliver, and the
redelivery must not be mistaken for a duplicate). :meth:`begin`, :meth:`rollback` and :meth:`end` let the ingest
sink undo the pending marks of a part of a batch whose processing raised (:func:`sentinel.ingest.isolate.isolate`).

Committed keys are kept for ``window_s`` of arrival time, and the window is rebuilt from ``message_log`` on start
(:meth:`load`). Nothing else in the database refuses a duplicate (``message_log`` has no unique key: COPY could not
skip one), so the filter is exact: no false "duplicate" (a lost reading) and no forgotten key within the window.
What makes it lean is the layout (issue 13: the dict of tuples it was cost ~300 B a key, 1.8 GB at its cap):

* the newest keys (up to ``young_max``) sit in a dict keyed by one int, ``device_id << 64 | seq``;
* older ones are frozen into :class:`_Segment` s: three sorted numpy columns, 20 B a key (``device_id << 32 | low
  32 bits of seq`` as uint64, the high bits of seq as uint32, ts as int64). A segment covers at most
  ``window_s / SEGMENTS`` of arrival time: the young dict is merged into the newest segment (an O(n) insert of
  sorted arrays, no re-sort) until it would span more, then a new one starts. A segment is dropped whole once its
  newest key is older than the window, so a key lives between ``window_s`` and ``window_s * (1 + 1/SEGMENTS)``.
* should the keys ever exceed ``max_keys`` (a rate far above the design load), the oldest segments go early: the
  window shrinks, memory does not grow. :attr:`DuplicateFilter.nbytes` says what the keys take.

A batch's frozen keys are looked up together (one ``searchsorted`` per segment and batch), so the cost per message
stays a few dict operations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np
import numpy.typing as npt

SEGMENTS = 8  # a window is covered by about this many frozen segments (plus the one being filled)
_LOW = 0xFFFFFFFF
_SEQ = (1 << 64) - 1


def _exact(device_id: int, seq: int) -> int:
    return (device_id << 64) | seq


@dataclass(slots=True)
class _Segment:
    """Frozen committed keys, sorted by ``keys`` (``device_id << 32 | seq & 0xFFFFFFFF``)."""

    keys: npt.NDArray[np.uint64]
    seq_hi: npt.NDArray[np.uint32]
    ts: npt.NDArray[np.int64]
    oldest_us: int  # arrival time of its oldest and newest key
    newest_us: int

    @classmethod
    def of(cls, young: list[tuple[int, int]], oldest_us: int, newest_us: int) -> _Segment:
        """From (exact key, ts) pairs."""
        n = len(young)
        device = np.fromiter((k >> 64 for k, _ in young), dtype=np.uint64, count=n)
        seq = np.fromiter((k & _SEQ for k, _ in young), dtype=np.uint64, count=n)
        keys = (device << np.uint64(32)) | (seq & np.uint64(_LOW))
        order = np.argsort(keys, kind="stable")
        ts = np.fromiter((t for _, t in young), dtype=np.int64, count=n)
        return cls(keys[order], (seq >> np.uint64(32)).astype(np.uint32)[order], ts[order], oldest_us, newest_us)

    def merge(self, other: _Segment) -> None:
        """Take ``other``'s keys in, keeping the order (an insert of sorted arrays, linear)."""
        at = np.searchsorted(self.keys, other.keys, side="right")
        self.keys = np.insert(self.keys, at, other.keys)
        self.seq_hi = np.insert(self.seq_hi, at, other.seq_hi)
        self.ts = np.insert(self.ts, at, other.ts)
        self.oldest_us = min(self.oldest_us, other.oldest_us)
        self.newest_us = max(self.newest_us, other.newest_us)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.seq_hi.nbytes + self.ts.nbytes)

    def find(
        self, keys: npt.NDArray[np.uint64], seq_hi: npt.NDArray[np.uint32], ts: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """(seen, same): the (device, seq) is here at all, and is here with this very ts."""
        lo = np.searchsorted(self.keys, keys, side="left")
        hi = np.searchsorted(self.keys, keys, side="right")
        seen = np.zeros(len(keys), dtype=np.bool_)
        same = np.zeros(len(keys), dtype=np.bool_)
        one = np.flatnonzero(hi - lo == 1)
        if len(one):
            at = lo[one]
            match = self.seq_hi[at] == seq_hi[one]
            seen[one] = match
            same[one] = match & (self.ts[at] == ts[one])
        for i in np.flatnonzero(hi - lo > 1):  # a reset device, or seqs 2**32 apart: rare, checked one by one
            run = slice(int(lo[i]), int(hi[i]))
            match = self.seq_hi[run] == seq_hi[i]
            seen[i] = bool(match.any())
            same[i] = bool((match & (self.ts[run] == ts[i])).any())
        return seen, same


class DuplicateFilter:
    def __init__(self, window_s: float = 3600.0, max_keys: int = 16_000_000, young_max: int = 1 << 16) -> None:
        self.window_us = int(window_s * 1_000_000)
        self.max_keys = max_keys
        self.young_max = young_max
        self._young: dict[int, int] = {}  # exact key -> ts_us, committed, not yet frozen
        self._displaced: dict[int, set[int]] = {}  # older ts of a young key committed again (a reset device)
        self._young_oldest_us: int | None = None
        self._young_newest_us = 0
        self._segments: list[_Segment] = []  # oldest first
        self._pending: dict[int, int] = {}  # exact key -> ts_us, admitted, not yet settled
        self._pending_more: set[tuple[int, int]] = set()  # (key, another ts) while the key is pending
        self._journal: list[tuple[int, int]] | None = None
        self._journal_conflicts = 0
        self.conflicts = 0  # same (device, seq), another ts: admitted as new, counted

    def __len__(self) -> int:
        return len(self._young) + sum(len(s) for s in self._segments)

    @property
    def nbytes(self) -> int:
        """Bytes the frozen keys take (the young dict, at most ``young_max`` keys, comes on top)."""
        return sum(s.nbytes for s in self._segments)

    # ------------------------------------------------------------------ admission
    def admit(self, device_id: int, seq: int, ts_us: int) -> bool:
        """True when the message is new (and is now pending); False for a duplicate."""
        return self.admit_many([device_id], [seq], [ts_us])[0]

    def admit_many(self, device_ids: Sequence[int], seqs: Sequence[int], ts_us: Sequence[int]) -> list[bool]:
        """For each message in order: True when new (now pending), False for a duplicate (of a committed key, a
        pending one, or an earlier one of these)."""
        if not device_ids:
            return []
        seen, same = self._frozen(device_ids, seqs, ts_us)
        out: list[bool] = []
        young, pending, more, journal, displaced = (
            self._young,
            self._pending,
            self._pending_more,
            self._journal,
            self._displaced,
        )
        for k, (device_id, seq, ts) in enumerate(zip(device_ids, seqs, ts_us, strict=True)):
            key = (device_id << 64) | seq  # inlined: this loop is the ingest hot path
            committed = young.get(key)
            before = pending.get(key)
            if (
                same[k]
                or ts in (committed, before)
                or (more and (key, ts) in more)
                or (displaced and ts in displaced.get(key, ()))
            ):
                out.append(False)
                continue
            if seen[k] or committed is not None or before is not None:
                self.conflicts += 1
                if journal is not None:
                    self._journal_conflicts += 1
            if journal is not None:
                journal.append((key, ts))
            if before is None:
                pending[key] = ts
            else:  # another ts of a pending key (a reset device within one batch): rare, kept aside
                more.add((key, ts))
            out.append(True)
        return out

    def _unmark(self, key: int, ts: int) -> None:
        if self._pending.get(key) == ts:
            del self._pending[key]
        elif self._pending_more:
            self._pending_more.discard((key, ts))

    def _frozen(
        self, device_ids: Sequence[int], seqs: Sequence[int], ts_us: Sequence[int]
    ) -> tuple[list[bool], list[bool]]:
        n = len(device_ids)
        if not self._segments:
            return [False] * n, [False] * n
        seq = np.fromiter(seqs, dtype=np.uint64, count=n)
        keys = (np.fromiter(device_ids, dtype=np.uint64, count=n) << np.uint64(32)) | (seq & np.uint64(_LOW))
        seq_hi = (seq >> np.uint64(32)).astype(np.uint32)
        ts = np.fromiter(ts_us, dtype=np.int64, count=n)
        seen = np.zeros(n, dtype=np.bool_)
        same = np.zeros(n, dtype=np.bool_)
        for segment in self._segments:
            s_seen, s_same = segment.find(keys, seq_hi, ts)
            seen |= s_seen
            same |= s_same
        return seen.tolist(), same.tolist()

    def begin(self) -> None:
        """Start recording admissions, so :meth:`rollback` can undo them."""
        self._journal = []
        self._journal_conflicts = 0

    def rollback(self) -> None:
        """Undo the pending marks (and the conflicts counted) since :meth:`begin`: the part that made them raised,
        and is admitted again."""
        for key, ts in reversed(self._journal or []):
            self._unmark(key, ts)
        self.conflicts -= self._journal_conflicts
        self._journal = []
        self._journal_conflicts = 0

    def end(self) -> None:
        self._journal = None

    # ------------------------------------------------------------------ settling
    def commit(self, keys: Iterable[tuple[int, int, int]], received_at_us: int, newest_us: int | None = None) -> None:
        """The batch holding these (device, seq, ts) is durable (received at ``received_at_us``; keys loaded from
        the database arrived between that and ``newest_us``)."""
        young, displaced, pending = self._young, self._displaced, self._pending
        for device_id, seq, ts_us in keys:
            key = (device_id << 64) | seq
            if pending.get(key) == ts_us:
                del pending[key]
            elif self._pending_more:
                self._pending_more.discard((key, ts_us))
            older = young.get(key, ts_us)
            if older != ts_us:
                displaced.setdefault(key, set()).add(older)
            young[key] = ts_us
        self._arrived(received_at_us, received_at_us if newest_us is None else newest_us)

    def abort(self, keys: Iterable[tuple[int, int, int]]) -> None:
        """The batch holding these was not written: forget them so a redelivery is accepted."""
        for device_id, seq, ts_us in keys:
            self._unmark(_exact(device_id, seq), ts_us)

    def load(self, rows: Iterable[tuple[int, int, int, int]]) -> None:
        """Rebuild from stored (device, seq, ts_us, received_at_us) rows, oldest first (streamed: the rows of a
        full window are never all in memory at once)."""
        it = iter(rows)
        while chunk := list(islice(it, self.young_max)):
            self.commit(((d, s, t) for d, s, t, _r in chunk), chunk[0][3], chunk[-1][3])

    # ------------------------------------------------------------------ freezing and expiry
    def _arrived(self, oldest_us: int, newest_us: int) -> None:
        """Keys that arrived between ``oldest_us`` and ``newest_us`` were added to the young dict."""
        if self._young_oldest_us is None or oldest_us < self._young_oldest_us:
            self._young_oldest_us = oldest_us
        self._young_newest_us = max(self._young_newest_us, newest_us)
        span = self.window_us // SEGMENTS
        if len(self._young) + len(self._displaced) >= self.young_max or newest_us - self._young_oldest_us > span:
            self._freeze(span)
        self._expire(newest_us)

    def _freeze(self, span: int) -> None:
        if not self._young or self._young_oldest_us is None:
            return
        pairs = [*self._young.items(), *((k, t) for k, older in self._displaced.items() for t in older)]
        fresh = _Segment.of(pairs, self._young_oldest_us, self._young_newest_us)
        self._young.clear()
        self._displaced.clear()
        self._young_oldest_us, self._young_newest_us = None, 0
        last = self._segments[-1] if self._segments else None
        if last is not None and fresh.newest_us - last.oldest_us <= span:
            last.merge(fresh)
        else:
            self._segments.append(fresh)

    def _expire(self, now_us: int) -> None:
        horizon = now_us - self.window_us
        segments = self._segments
        while segments and segments[0].newest_us < horizon:
            segments.pop(0)
        while len(segments) > 1 and len(self) > self.max_keys:
            segments.pop(0)
