"""Decoded telemetry -> numpy columns, one row per reading, for the batcher, the engine and COPY.

The flattening runs in C: ``map``/``attrgetter``/``chain`` feed ``np.fromiter`` and ``np.repeat``, so no Python
bytecode runs per reading (bench/wire.py measures it against a plain loop). Bools become 1.0 / 0.0 here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter

import numpy as np
import numpy.typing as npt

from sentinel.wire.messages import Telemetry

_device = attrgetter("device")
_ts_us = attrgetter("ts_us")
_seq = attrgetter("seq")
_metrics = attrgetter("metrics")


@dataclass(frozen=True, slots=True)
class ReadingColumns:
    """Readings as equal-length columns. Row i is one reading: ``device[i]`` sent ``metric[i] = value[i]`` at
    ``ts_us[i]`` (UTC epoch microseconds) in its message number ``seq[i]``.

    ``device`` and ``metric`` are object arrays of ``str`` (cheap to build and to map to series ids with a dict);
    ``seq`` and ``ts_us`` are int64, ``value`` float64. Rows keep message order, and within a message the order
    of its metrics.
    """

    device: npt.NDArray[np.object_]
    seq: npt.NDArray[np.int64]
    ts_us: npt.NDArray[np.int64]
    metric: npt.NDArray[np.object_]
    value: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.value)

    @classmethod
    def empty(cls) -> ReadingColumns:
        return cls(
            np.empty(0, dtype=object),
            np.empty(0, dtype=np.int64),
            np.empty(0, dtype=np.int64),
            np.empty(0, dtype=object),
            np.empty(0, dtype=np.float64),
        )

    @classmethod
    def concat(cls, parts: Sequence[ReadingColumns]) -> ReadingColumns:
        """Join several batches' columns, in order."""
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.device for p in parts]),
            np.concatenate([p.seq for p in parts]),
            np.concatenate([p.ts_us for p in parts]),
            np.concatenate([p.metric for p in parts]),
            np.concatenate([p.value for p in parts]),
        )


def to_columns(messages: Sequence[Telemetry]) -> ReadingColumns:
    """Flatten validated messages into reading columns."""
    count = len(messages)
    metrics = list(map(_metrics, messages))
    per_message = np.fromiter(map(len, metrics), dtype=np.int64, count=count)
    total = int(per_message.sum())
    return ReadingColumns(
        device=np.repeat(np.fromiter(map(_device, messages), dtype=object, count=count), per_message),
        seq=np.repeat(np.fromiter(map(_seq, messages), dtype=np.int64, count=count), per_message),
        ts_us=np.repeat(np.fromiter(map(_ts_us, messages), dtype=np.int64, count=count), per_message),
        metric=np.fromiter(chain.from_iterable(metrics), dtype=object, count=total),
        value=np.fromiter(chain.from_iterable(map(dict.values, metrics)), dtype=np.float64, count=total),
    )
