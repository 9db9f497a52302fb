"""Drift-aware scoring: the detector judges each row against a centre that follows slow drift of normal operation.

A plant's normal levels wander (a pump warms up, a bearing's vibration settles, a circuit's flow creeps) far more
over hours than over the minutes a model is often fitted on: on SKAB's anomaly-free recording the accelerometers
and the flow move 5-10 training standard deviations within 40 minutes of a 7-minute training period, while every
reading stays normal. A fixed centre turns that into a permanent alarm.

So each device carries a drift state per feature the detector uses: an ``offset`` (in the feature's units,
subtracted from every row before the detector sees it) and a ``trend`` (the offset's change per row). It is
Brown's double exponential smoothing with memory ``drift_rows`` rows (lambda = 1 / drift_rows; level gain
lambda (2 - lambda), trend gain lambda²), which follows a linear drift with no lag (a plain moving mean lags a
drift by rate x memory, and a PCA limit is narrow next to that). Each row:

- the offset first moves by the trend (the drift goes on, also during an alarm);
- the row is scored against it;
- if the row was judged normal (its smoothed score, the value the alarm is taken from, was not above the limit),
  the offset and trend take in the row's deviation, clipped to ``CLIP`` training standard deviations per feature
  so that one wild reading inside the limit pulls little. During an alarm they take in nothing: a fault is not
  learnt as the new normal, however long it lasts. A row with a missing value (NaN) moves nothing either, and
  its NaN statistic stays out of later rows' smoothing windows.

What it cannot do: follow a change faster than the limit allows. A level that leaves the limit before the state
has caught up alarms, and the alarm holds (nothing is learnt while it alarms); a model fitted on too few minutes
for the plant's drift still needs a longer training period. The recursion runs row by row (each row's gate
depends on the earlier rows). For PCA and isolation forest detectors it runs compiled, one pass over every row of
every device (:mod:`.drift_kernel`), as fast per row as scoring with a fixed centre or faster. Any other
detector goes through :func:`recentred_loop`, the same recursion in numpy across devices at once: a loop over
the k-th row of every device in the batch (a few array steps per row position; slow for one long series).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.detector import Detector, FloatArray
from sentinel.engine.anomaly.drift_kernel import compiled_recentred, supported

CLIP = 3.0  # training standard deviations a single row may pull the centre by (times alpha)

IntArray = npt.NDArray[np.int64]


def recentred_statistics(
    detector: Detector,
    rows: FloatArray,
    group: IntArray,
    offset: FloatArray,
    past: FloatArray,
    *,
    limit: float,
    drift_rows: int,
    centre: FloatArray,
    scale: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Raw and smoothed statistic of every row, with each group's centre following drift (see module doc).

    ``rows`` (N, f) are the detector's columns, each group's rows contiguous and in time order; ``group`` (N,) is
    each row's group ordinal into ``offset`` (G, 2, f: offset, then trend per row) and ``past`` (G, smoothing - 1:
    the group's latest raw
    statistics, oldest first, NaN where there are fewer). Both are updated in place to the state after the
    batch. ``centre`` and ``scale`` are the training mean and standard deviation of the columns; ``limit`` the
    model's (``inf`` while fitting: every row then moves the centre).
    """
    if supported(detector) and len(rows):
        heads = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        lengths = np.diff(np.r_[heads, len(rows)])
        ids = group[heads]
        old = past[ids]
        gain = 1.0 / drift_rows
        return compiled_recentred(
            detector, rows, heads, lengths, ids, offset, past,
            np.nansum(old, axis=1), np.isfinite(old).sum(axis=1).astype(np.float64),
            limit=limit, level_gain=gain * (2.0 - gain), trend_gain=gain * gain, clip=CLIP, centre=centre, scale=scale,
        )  # fmt: skip
    return recentred_loop(
        detector, rows, group, offset, past, limit=limit, drift_rows=drift_rows, centre=centre, scale=scale
    )


def recentred_loop(
    detector: Detector,
    rows: FloatArray,
    group: IntArray,
    offset: FloatArray,
    past: FloatArray,
    *,
    limit: float,
    drift_rows: int,
    centre: FloatArray,
    scale: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """:func:`recentred_statistics` in numpy, for any detector: a loop over row positions, across groups."""
    n = len(rows)
    raw = np.empty(n)
    smoothed = np.empty(n)
    if n == 0:
        return raw, smoothed
    heads = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    lengths = np.diff(np.r_[heads, n])
    # Groups by decreasing length, so that the groups with a k-th row are always the first ones: slices, not
    # gathers, in the loop below.
    order = np.argsort(-lengths, kind="stable")
    heads, lengths = heads[order], lengths[order]
    ids = group[heads]
    alive = np.searchsorted(-lengths, -np.arange(int(lengths[0])), side="left")  # groups with a k-th row
    gain = 1.0 / drift_rows
    level_gain, trend_gain = gain * (2.0 - gain), gain * gain
    empty = rows[:0]
    level, trend = offset[ids, 0], offset[ids, 1]
    old = past[ids]
    span = old.shape[1]
    # The sum and count of the statistics in each group's smoothing window before its current row.
    window_sum, window_count = np.nansum(old, axis=1), np.isfinite(old).sum(axis=1).astype(np.float64)
    for k, m in enumerate(alive):
        at = heads[:m] + k
        level[:m] += trend[:m]
        shifted = rows[at] - level[:m]
        value = detector.statistic(empty, shifted)
        mean = (window_sum[:m] + value) / (window_count[:m] + 1.0)
        raw[at], smoothed[at] = value, mean
        if span:
            # The value leaving the window: from before the batch, or this batch's row ``span`` rows back.
            # A missing value (NaN) neither enters the window nor counts in it.
            leaving = old[:m, k] if k < span else raw[at - span]
            entering_known, leaving_known = np.isfinite(value), np.isfinite(leaving)
            window_sum[:m] += np.where(entering_known, value, 0.0) - np.where(leaving_known, leaving, 0.0)
            window_count[:m] += entering_known.astype(np.float64) - leaving_known
        # Only a complete row judged normal moves the centre (NaN would make the offset NaN for good).
        normal = (mean <= limit) & np.isfinite(shifted).all(axis=1)
        step = np.where(normal[:, None], np.clip((shifted - centre) / scale, -CLIP, CLIP) * scale, 0.0)
        level[:m] += level_gain * step
        trend[:m] += trend_gain * step
    offset[ids, 0], offset[ids, 1] = level, trend
    if span:
        # Each group's last ``span`` statistics: the tail of (before the batch, then this batch's rows).
        tails = heads + lengths - 1
        back = np.arange(-span + 1, 1)
        source = tails[:, None] + back  # positions in raw; before the group's head they come from ``old``
        inside = source >= heads[:, None]
        from_old = old[np.arange(len(ids))[:, None], np.clip(span + (source - heads[:, None]), 0, span - 1)]
        past[ids] = np.where(inside, raw[np.maximum(source, 0)], from_old)
    return raw, smoothed
