"""The columnar micro-batch that flows from admission to storage and the engine.

A :class:`ReadingBatch` holds readings whose devices and metrics are already resolved to their database ids
(``device_id`` int32, ``metric_id`` int16), so the store can COPY it and the engine can index its dense state with
it directly. An :class:`IngestBatch` is everything one durable write covers: readings, the (device, seq) keys of
the messages they came from (for duplicate filtering after a restart), device events, and dead letters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sentinel.wire.deadletter import DeadLetter


@dataclass(frozen=True, slots=True)
class ReadingBatch:
    """Readings as equal-length columns: device time (UTC epoch µs), device id, metric id, value, message seq."""

    ts_us: npt.NDArray[np.int64]
    device_id: npt.NDArray[np.int32]
    metric_id: npt.NDArray[np.int16]
    value: npt.NDArray[np.float64]
    seq: npt.NDArray[np.int64] | None = None

    def __post_init__(self) -> None:
        n = len(self.ts_us)
        lengths = {len(self.device_id), len(self.metric_id), len(self.value)}
        if self.seq is not None:
            lengths.add(len(self.seq))
        if lengths != {n}:
            raise ValueError("ReadingBatch: columns differ in length")

    def __len__(self) -> int:
        return len(self.ts_us)

    @classmethod
    def empty(cls) -> ReadingBatch:
        return cls(
            np.empty(0, np.int64),
            np.empty(0, np.int32),
            np.empty(0, np.int16),
            np.empty(0, np.float64),
            np.empty(0, np.int64),
        )

    @classmethod
    def concat(cls, parts: Sequence[ReadingBatch]) -> ReadingBatch:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        seqs = [p.seq for p in parts]
        return cls(
            np.concatenate([p.ts_us for p in parts]),
            np.concatenate([p.device_id for p in parts]),
            np.concatenate([p.metric_id for p in parts]),
            np.concatenate([p.value for p in parts]),
            None if any(s is None for s in seqs) else np.concatenate([s for s in seqs if s is not None]),
        )


@dataclass(frozen=True, slots=True)
class MessageKeys:
    """One row per accepted message: who sent it, its sequence number and device time."""

    device_id: npt.NDArray[np.int32]
    seq: npt.NDArray[np.int64]
    ts_us: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.seq)


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """A discrete event or an online/offline status, kept as sent."""

    device_id: int
    ts_us: int
    topic_type: str  # 'event' or 'status' (the topic it came on; stored in column device_events.topic_type)
    name: str  # the event id, or 'online' / 'offline'
    value: float | None = None
    state: str | None = None
    note: str | None = None


@dataclass(slots=True)
class IngestBatch:
    """Everything one durable write covers. ``received_at_us`` is when the collector got it (wall clock)."""

    received_at_us: int
    readings: ReadingBatch
    messages: MessageKeys
    events: list[DeviceEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    duplicates: int = 0
    commit_seq: int = 0  # set once committed: its message_log rows' ingest_commit_seq (commit order)

    @classmethod
    def of_dead_letters(cls, received_at_us: int, letters: Sequence[DeadLetter]) -> IngestBatch:
        empty = MessageKeys(np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int64))
        return cls(received_at_us, ReadingBatch.empty(), empty, dead_letters=list(letters))

    @classmethod
    def merge(cls, parts: Sequence[IngestBatch]) -> IngestBatch:
        return cls(
            received_at_us=max((p.received_at_us for p in parts), default=0),
            readings=ReadingBatch.concat([p.readings for p in parts]),
            messages=MessageKeys(
                np.concatenate([p.messages.device_id for p in parts]) if parts else np.empty(0, np.int32),
                np.concatenate([p.messages.seq for p in parts]) if parts else np.empty(0, np.int64),
                np.concatenate([p.messages.ts_us for p in parts]) if parts else np.empty(0, np.int64),
            ),
            events=[e for p in parts for e in p.events],
            dead_letters=[d for p in parts for d in p.dead_letters],
            duplicates=sum(p.duplicates for p in parts),
        )
