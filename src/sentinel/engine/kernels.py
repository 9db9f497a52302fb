"""Vectorised building blocks over *streams*: readings sorted so each instance's readings are contiguous and
in evaluation order. ``start`` marks the first reading of each instance. Nothing here loops per reading.

Carry-in state (what the previous batch left) enters as per-reading arrays gathered by instance; the value
needed at the end of each instance is read at the ``ends`` positions by the caller.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from sentinel.engine.params import NEVER

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def first_index(start: B) -> I64:
    """Index of the first reading of each reading's instance."""
    idx = np.arange(len(start), dtype=np.int64)
    return np.maximum.accumulate(np.where(start, idx, 0))


def ends(start: B) -> B:
    """Mask of the last reading of each instance."""
    out = np.empty(len(start), dtype=np.bool_)
    out[:-1] = start[1:]
    if len(out):
        out[-1] = True
    return out


def last_true(mask: B, first: I64) -> I64:
    """Index of the latest True at or before each reading within its instance, -1 when none yet."""
    idx = np.maximum.accumulate(np.where(mask, np.arange(len(mask), dtype=np.int64), -1))
    return np.where(idx >= first, idx, -1)


def shift(values: npt.NDArray[np.generic], start: B, carry: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """The previous reading's value within the instance; ``carry`` (one per instance start) at each start."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    out[start] = carry
    return out


def sustained(
    cond: B, te: I64, start: B, first: I64, since_in: I64, hold_us: float | npt.NDArray[Any]
) -> tuple[B, I64]:
    """Whether ``cond`` has held for ``hold_us`` at each reading, and since when (NEVER where it does not hold).

    A run of True readings starts at its first reading's time, or continues the run the previous batch left
    open (``since_in``, one per instance start, not NEVER) when the instance's first reading also holds.
    """
    open_run = since_in != NEVER
    prev = np.empty_like(cond)
    prev[1:] = cond[:-1]
    prev[start] = open_run
    marker = cond & (start | ~prev)
    marker_value = te.copy()
    marker_value[np.flatnonzero(start)[open_run]] = since_in[open_run]
    at = last_true(marker, first)
    since = np.where(cond, marker_value[np.maximum(at, 0)], NEVER)
    held = cond & (te - np.where(cond, since, 0) >= hold_us)
    return held, since


def latch(set_: B, reset: B, on_in: B, first: I64) -> B:
    """A set/reset latch per instance: on after a set, off after a reset, else as before (set wins ties)."""
    at = last_true(set_ | reset, first)
    return np.where(at >= 0, set_[np.maximum(at, 0)], on_in)


def segment_cumsum(delta: I64, first: I64) -> I64:
    """Running sum of ``delta`` within each instance (inclusive)."""
    total = np.cumsum(delta)
    return total - total[first] + delta[first]


def changes(grade: npt.NDArray[np.int8], start: B, active_in: npt.NDArray[np.int8]) -> tuple[I64, npt.NDArray[np.int8]]:
    """Positions where the grade moves, and the grade before each reading (``active_in`` per start)."""
    before = shift(grade, start, active_in)
    return np.flatnonzero(grade != before), before  # type: ignore[return-value]


def order_by(columns: list[I64], tiebreak: I64) -> I64:
    """Row order by ``columns`` (most significant first, each non-negative), then by ``tiebreak``.

    When the columns fit in 63 bits they are packed into one int64 key and sorted once (several times faster
    than a multi-key lexsort); only if two rows share a key does the tiebreak need a second key.
    """
    widths = [int(c.max()).bit_length() if len(c) else 0 for c in columns]
    if sum(widths) > 63:
        return np.lexsort((tiebreak, *reversed(columns)))
    key = np.zeros(len(tiebreak), dtype=np.int64)
    for column, width in zip(columns, widths, strict=True):
        key = (key << width) | column
    order = np.argsort(key)
    ordered = key[order]
    if len(ordered) > 1 and bool((ordered[1:] == ordered[:-1]).any()):
        return np.lexsort((tiebreak, key))
    return order
