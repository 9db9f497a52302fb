"""Duplicate filter by (device, seq): QoS 1 redelivery, gateway retries and replays are dropped, even across a
restart.

A message is a duplicate when a message with the same device and sequence number *and the same device time* was
already accepted. Comparing the time too keeps a device that restarted and reset its counter from being
silenced: its new message 0 carries a new time.

Keys move through two states. :meth:`DuplicateFilter.admit` checks a message against both the committed keys and
the keys of batches still being written, and marks it pending; :meth:`commit` makes the batch's keys permanent once
it is durable, :meth:`abort` forgets them when the write failed (the broker will redeliver, and the redelivery must
not be mistaken for a duplicate). Committed keys are kept for ``window_s`` of arrival time, and the window is
rebuilt from ``message_log`` on start (:meth:`load`).

The same (device, seq) with another device time is not a duplicate: it is a device whose counter was reset (a
restart), and refusing it would silence a gas sensor for the whole window. It is stored and counted in
:attr:`DuplicateFilter.conflicts` (``schemas/README``: a message is identified by device, seq *and* ts).

:meth:`begin`, :meth:`rollback` and :meth:`end` let the ingest sink undo the pending marks of a part of a batch
whose processing raised (:func:`sentinel.ingest.isolate.isolate`), so a redelivery is not taken for a duplicate.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

Key = tuple[int, int]


class DuplicateFilter:
    def __init__(self, window_s: float = 3600.0, max_keys: int = 5_000_000) -> None:
        self.window_us = int(window_s * 1_000_000)
        self.max_keys = max_keys
        self._committed: dict[Key, tuple[int, int]] = {}  # key -> (ts_us, arrival_us)
        self._pending: dict[Key, int] = {}
        self._arrivals: deque[tuple[int, Key]] = deque()
        self._journal: list[tuple[Key, int | None]] | None = None
        self.conflicts = 0  # same (device, seq), another ts: admitted as new, counted

    def __len__(self) -> int:
        return len(self._committed)

    def admit(self, device_id: int, seq: int, ts_us: int) -> bool:
        """True when the message is new (and is now pending); False for a duplicate."""
        key = (device_id, seq)
        committed = self._committed.get(key)
        if committed is not None and committed[0] == ts_us:
            return False
        pending = self._pending.get(key)
        if pending == ts_us:
            return False
        if committed is not None or pending is not None:
            self.conflicts += 1
        if self._journal is not None:
            self._journal.append((key, pending))
        self._pending[key] = ts_us
        return True

    def begin(self) -> None:
        """Start recording admissions, so :meth:`rollback` can undo them."""
        self._journal = []

    def rollback(self) -> None:
        """Undo the pending marks made since :meth:`begin` (the part that made them raised)."""
        for key, before in reversed(self._journal or []):
            if before is None:
                self._pending.pop(key, None)
            else:
                self._pending[key] = before
        self._journal = []

    def end(self) -> None:
        self._journal = None

    def commit(self, keys: Iterable[tuple[int, int, int]], received_at_us: int) -> None:
        """The batch holding these (device, seq, ts) is durable."""
        for device_id, seq, ts_us in keys:
            key = (device_id, seq)
            self._pending.pop(key, None)
            self._committed[key] = (ts_us, received_at_us)
            self._arrivals.append((received_at_us, key))
        self._expire(received_at_us)

    def abort(self, keys: Iterable[tuple[int, int, int]]) -> None:
        """The batch holding these was not written: forget them so a redelivery is accepted."""
        for device_id, seq, ts_us in keys:
            key = (device_id, seq)
            if self._pending.get(key) == ts_us:
                del self._pending[key]

    def load(self, rows: Iterable[tuple[int, int, int, int]]) -> None:
        """Rebuild from stored (device, seq, ts_us, received_at_us) rows, oldest first."""
        for device_id, seq, ts_us, received_at_us in rows:
            key = (device_id, seq)
            self._committed[key] = (ts_us, received_at_us)
            self._arrivals.append((received_at_us, key))

    def _expire(self, now_us: int) -> None:
        horizon = now_us - self.window_us
        arrivals, committed = self._arrivals, self._committed
        while arrivals and (arrivals[0][0] < horizon or len(arrivals) > self.max_keys):
            arrival_us, key = arrivals.popleft()
            entry = committed.get(key)
            # A key committed again later (a reset device) has a newer arrival: keep it until that one expires.
            if entry is not None and entry[1] == arrival_us:
                del committed[key]
