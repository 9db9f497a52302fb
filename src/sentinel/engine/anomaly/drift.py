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
  learnt as the new normal, however long it lasts.

What it cannot do: follow a change faster than the limit allows. A level that leaves the limit before the state
has caught up alarms, and the alarm holds (nothing is learnt while it alarms); a model fitted on too few minutes
for the plant's drift still needs a longer training period. The recursion runs row by row (each row's gate
depends on the earlier rows), but across devices at once: the loop is over the k-th row of every device in the
batch, so the live engine (many devices, a few rows each per batch) pays a few array steps per batch, and offline
scoring of one long series one small step per row.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.detector import Detector, FloatArray

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
            leaving = old[:m, k] if k < span else raw[at - span]
            known = np.isfinite(leaving)
            window_sum[:m] += value - np.where(known, leaving, 0.0)
            window_count[:m] += ~known
        normal = mean <= limit
        step = np.clip((shifted - centre) / scale, -CLIP, CLIP) * scale * normal[:, None]
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
    heads = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    lengths = np.diff(np.r_[heads, n])
    smoothing = 1.0 / drift_rows
    level_gain, trend_gain = smoothing * (2.0 - smoothing), smoothing * smoothing
    empty = rows[:0]
    # Per group: the sum and count of the statistics in the smoothing window before the current row.
    window_sum = np.nansum(past, axis=1)[group[heads]]
    window_count = np.isfinite(past).sum(axis=1)[group[heads]].astype(np.float64)
    level, trend = offset[group[heads], 0], offset[group[heads], 1]
    window = past[group[heads]]
    span = past.shape[1]
    for k in range(int(lengths.max())):
        live = np.flatnonzero(lengths > k) if k else np.arange(len(heads))
        at = heads[live] + k
        level[live] += trend[live]
        shifted = rows[at] - level[live]
        value = detector.statistic(empty, shifted)
        mean = (window_sum[live] + value) / (window_count[live] + 1.0)
        raw[at], smoothed[at] = value, mean
        if span:
            oldest = window[live, 0]
            full = np.isfinite(oldest)
            window_sum[live] += value - np.where(full, oldest, 0.0)
            window_count[live] += ~full
            window[live, :-1] = window[live, 1:]
            window[live, -1] = value
        normal = np.flatnonzero(mean <= limit)
        if len(normal):
            step = np.clip((shifted[normal] - centre) / scale, -CLIP, CLIP) * scale
            index = live[normal]
            level[index] += level_gain * step
            trend[index] += trend_gain * step
    which = group[heads]
    offset[which, 0], offset[which, 1] = level, trend
    past[which] = window
    return raw, smoothed
    heads = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    lengths = np.diff(np.r_[heads, n])
    smoothing = 1.0 / drift_rows
    level_gain, trend_gain = smoothing * (2.0 - smoothing), smoothing * smoothing
    empty = rows[:0]
    for k in range(int(lengths.max())):
        live = lengths > k
        at = heads[live] + k
        g = group[at]
        offset[g, 0] += offset[g, 1]
        shifted = rows[at] - offset[g, 0]
        value = detector.statistic(empty, shifted)
        window = np.concatenate([past[g], value[:, None]], axis=1)
        mean = window.mean(axis=1)
        # Windows not yet full hold NaN; those rows average what they have.
        gaps = np.isnan(mean)
        if gaps.any():
            mean[gaps] = np.nanmean(window[gaps], axis=1)
        raw[at], smoothed[at] = value, mean
        past[g] = window[:, 1:]
        normal = mean <= limit
        if normal.any():
            step = np.clip((shifted[normal] - centre) / scale, -CLIP, CLIP) * scale
            offset[g[normal], 0] += level_gain * step
            offset[g[normal], 1] += trend_gain * step
    return raw, smoothed
