"""Vectorised building blocks over *streams*: readings sorted so each instance's readings are contiguous and
in evaluation order. :class:`Segments` describes where each instance's readings begin and end. Nothing here
loops per reading.

Carry-in state (what the previous batch left) enters as one value per instance (gathered at ``heads``); what
the next batch needs is read at ``tails``. Integer positions are used rather than boolean masks because
numpy's masked indexing is several times slower than a gather when about half the readings are selected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sentinel.engine.params import NEVER

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Segments:
    """Instance boundaries of a stream: ``start`` mask, ``heads``/``tails`` (first/last reading of each
    instance), ``seg`` (each reading's instance ordinal) and ``first`` (each reading's instance head)."""

    start: B
    heads: I64
    tails: I64
    seg: I64
    first: I64

    @classmethod
    def of(cls, start: B) -> Segments:
        heads = np.flatnonzero(start)
        tails = np.empty_like(heads)
        tails[:-1] = heads[1:] - 1
        if len(tails):
            tails[-1] = len(start) - 1
        seg = np.cumsum(start, dtype=np.int64) - 1
        return cls(start, heads, tails, seg, heads[seg])


def first_index(start: B) -> I64:
    """Index of the first reading of each reading's group (``start`` marks group heads)."""
    idx = np.arange(len(start), dtype=np.int64)
    return np.maximum.accumulate(np.where(start, idx, 0))


def last_true(mask: B, first: I64) -> I64:
    """Index of the latest True at or before each reading within its instance, -1 when none yet."""
    idx = np.maximum.accumulate(np.where(mask, np.arange(len(mask), dtype=np.int64), -1))
    return np.where(idx >= first, idx, -1)


def shift(values: npt.NDArray[Any], heads: I64, carry: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The previous reading's value within the instance; ``carry`` (one per instance) at each head."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    out[heads] = carry
    return out


def sustained(cond: B, te: I64, sg: Segments, since_in: I64, hold_us: float | npt.NDArray[Any]) -> tuple[B, I64]:
    """Whether ``cond`` has held for ``hold_us`` at each reading, and since when (NEVER where it does not hold).

    A run of True readings starts at its first reading's time, or continues the run the previous batch left
    open (``since_in``, one per instance, not NEVER) when the instance's first reading also holds.
    """
    open_run = since_in != NEVER
    prev = np.empty_like(cond)
    prev[1:] = cond[:-1]
    prev[sg.heads] = open_run
    marker = cond & (sg.start | ~prev)
    marker_value = te.copy()
    marker_value[sg.heads[open_run]] = since_in[open_run]
    at = last_true(marker, sg.first)
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


def changes(
    grade: npt.NDArray[np.int8], heads: I64, active_in: npt.NDArray[np.int8]
) -> tuple[I64, npt.NDArray[np.int8]]:
    """Positions where the grade moves, and the grade before each reading (``active_in`` per instance)."""
    before = shift(grade, heads, active_in)
    return np.flatnonzero(grade != before), before


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
