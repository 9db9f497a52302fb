"""Drift-aware scoring: the detector judges each row against a centre that follows slow drift of normal operation.

A plant's normal levels wander (a pump warms up, a bearing's vibration settles, a circuit's flow creeps) far more
over hours than over the minutes a model is often fitted on: on SKAB's anomaly-free recording the accelerometers
and the flow move 5-10 training standard deviations within 40 minutes of a 7-minute training period, while every
reading stays normal. A fixed centre turns that into a permanent alarm.

So each device carries an ``offset`` (one value per feature the detector uses, in the features' units), subtracted
from every row before the detector sees it. After each row the offset moves towards the row, as an exponentially
weighted mean with memory ``drift_rows`` rows (alpha = 1 / drift_rows), but only

- when the row was judged normal: its smoothed score (the value the alarm is taken from) was not above the limit.
  During an alarm the centre stands still, so a fault is never learnt as the new normal, however long it lasts;
- by a bounded step: the row's deviation from the current centre is clipped to ``CLIP`` training standard
  deviations per feature first, so that one wild reading inside the limit moves the centre by at most
  ``CLIP / drift_rows`` standard deviations.

What it cannot do: follow drift faster than the limit allows. A level that leaves the limit before the centre
has caught up alarms, and the alarm holds (the gate closes): fitting on too few minutes for the plant's drift still
needs a longer training period. The recursion runs row by row (each row's gate depends on the previous rows'
offsets), but across devices at once: the loop is over the k-th row of every device in the batch, so the live
engine (many devices, a few rows each per batch) pays a few array steps per batch, and offline scoring (one long
series) pays one small step per row.
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
    each row's group ordinal into ``offset`` (G, f) and ``past`` (G, smoothing - 1: the group's latest raw
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
    alpha = 1.0 / drift_rows
    empty = rows[:0]
    for k in range(int(lengths.max())):
        live = lengths > k
        at = heads[live] + k
        g = group[at]
        shifted = rows[at] - offset[g]
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
            offset[g[normal]] += alpha * step
    return raw, smoothed
