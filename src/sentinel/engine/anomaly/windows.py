"""Trailing-window operations on whole batches, carrying the tail of the previous batch.

Everything here is array arithmetic over a batch: no Python loop runs per row. A window that reaches back before
the first row ever seen uses the rows that exist (a 30-row mean over the third row averages three rows), so that
scoring a stream in batches gives exactly what scoring it in one piece gives.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def trailing_mean(history: FloatArray, values: FloatArray, window: int) -> FloatArray:
    """Mean of each value with up to ``window - 1`` values before it (taken from ``history`` first)."""
    if window <= 1:
        return values.copy()
    joined = np.concatenate([history[-(window - 1) :], values]) if len(history) else values
    offset = len(joined) - len(values)
    sums = np.concatenate([[0.0], np.cumsum(joined)])
    ends = np.arange(offset, len(joined)) + 1
    starts = np.maximum(ends - window, 0)
    result: FloatArray = (sums[ends] - sums[starts]) / (ends - starts)
    return result


def trailing_median(history: FloatArray, rows: FloatArray, window: int) -> FloatArray:
    """Column-wise median of each row with up to ``window - 1`` rows before it (``history`` then ``rows``)."""
    if window <= 1 or len(rows) == 0:
        return rows.copy()
    past = history[-(window - 1) :] if len(history) else history.reshape(0, rows.shape[1])
    # Pad with NaN so that the first windows hold fewer real rows; nanmedian ignores the padding.
    pad = np.full((window - 1 - len(past), rows.shape[1]), np.nan)
    joined = np.concatenate([pad, past, rows])
    windows = np.lib.stride_tricks.sliding_window_view(joined, window, axis=0)
    # window - 1 + len(rows) padded rows give exactly one window per row of the batch. nanmedian is several
    # times slower than median, so it is used only when padding or a missing reading is present.
    has_nan = len(pad) > 0 or bool(np.isnan(rows).any()) or bool(np.isnan(past).any())
    result: FloatArray = np.nanmedian(windows, axis=-1) if has_nan else np.median(windows, axis=-1)
    return result


def run_lengths(flags: BoolArray, carried: int) -> npt.NDArray[np.int64]:
    """Length of the run of True ending at each position; ``carried`` is the run still open before the batch."""
    positions = np.arange(1, len(flags) + 1, dtype=np.int64)
    # Index (1-based) of the most recent False at or before each position, 0 when none in this batch.
    last_false = np.maximum.accumulate(np.where(flags, 0, positions))
    runs = positions - last_false
    runs = np.where(last_false == 0, runs + carried, runs)
    return np.where(flags, runs, 0)


def grouped_windows(carried: FloatArray, values: FloatArray, group: npt.NDArray[np.int64]) -> FloatArray:
    """For each value, the trailing window of its group: up to ``w - 1`` earlier values, then itself.

    ``values`` (N, ...) are sorted so each group's values are contiguous, ``group`` (N,) is each value's group
    ordinal 0..G-1 and ``carried`` (G, w - 1, ...) holds each group's values from earlier batches, oldest first,
    NaN where the group has fewer. Returns (N, w, ...): many devices' windows built by one gather, no loop.
    """
    span = carried.shape[1]
    if span == 0:
        return values[:, None]
    n_groups = carried.shape[0]
    # Layout: each group's carried values immediately before its own values.
    position = np.arange(len(values), dtype=np.int64) + (group + 1) * span
    heads = np.flatnonzero(np.diff(group, prepend=-1) != 0) if len(group) else np.zeros(0, dtype=np.int64)
    joined = np.empty((len(values) + n_groups * span, *values.shape[1:]))
    joined[position] = values
    carried_at = (heads + np.arange(n_groups) * span)[:, None] + np.arange(span)
    joined[carried_at] = carried
    window: FloatArray = joined[position[:, None] - span + np.arange(span + 1)]
    return window


def carried_tails(carried: FloatArray, windows: FloatArray, tails: npt.NDArray[np.int64]) -> FloatArray:
    """What each group carries into the next batch: the last ``w - 1`` values of the window at its tail."""
    if carried.shape[1] == 0:
        return carried
    result: FloatArray = windows[tails, 1:]
    return result


def held_alarm(raised: BoolArray, hold: BoolArray, warm: BoolArray, on: bool) -> BoolArray:
    """The alarm with its deadband: on from a raising row for as long as every row since holds (score >= clear).

    ``on``: the alarm was on at the end of the previous batch. NaN scores do not hold (a missing reading breaks an
    alarm as it breaks a run), nor do rows before the warm-up.
    """
    index = np.arange(len(raised))
    holding = (hold | raised) & warm  # a raising row is above the limit, so above any clear value
    last_raise = np.maximum.accumulate(np.where(raised, index, -1))
    last_break = np.maximum.accumulate(np.where(holding, -1, index))
    alarm: BoolArray = holding & ((last_raise > last_break) | (on & (last_break < 0)))
    return alarm
