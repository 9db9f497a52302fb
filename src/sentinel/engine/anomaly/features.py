"""What the training rows say about each feature before any detector is fitted: its scale, and whether it is
too slow to put a limit on.

Both decide how a feature enters a model (:func:`~sentinel.engine.anomaly.model.fit_model`): the scale the PCA
detector and the drift-following centre standardise it by, and whether the detector uses it at all.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.detector import FloatArray


def feature_scale(train: FloatArray) -> FloatArray:
    """Each column's standard deviation, never below half the step of a quantised one; 1.0 for a constant one.

    A quantised sensor (SKAB's pressure reads in steps of 0.328 bar; a count, a percentage with one decimal) can
    sit on one level for most of a short training period and step to a neighbouring level now and then. Its
    standard deviation is then a small fraction of one step, and a later step, as ordinary as those in training,
    counts as a departure of many standard deviations (or, in a model of several sensors, the steps in training
    push the limit out and blunt it for every other sensor). One step is the smallest change such a sensor can
    show, so the scale is floored at half a step, the standard deviation of readings flipping evenly between two
    adjacent levels: one step is then 2 scale units, within a 3-sigma limit, and a move of two steps is not.

    A column counts as quantised when its training values take at least three levels, all whole steps apart (the
    step being the smallest gap; gaps within float noise of the values are one level read twice). Two levels
    alone do not show a grid: a 0/20 spike signal or an on/off status is not a sensor of resolution 20 or 1, and
    keeps its standard deviation. A continuous sensor keeps it too.
    """
    spread = train.std(axis=0, ddof=1) if len(train) > 1 else np.zeros(train.shape[1])
    floor = np.zeros(train.shape[1])
    for j, column in enumerate(train.T):
        ordered = np.unique(column)
        gaps = np.diff(ordered)
        noise = 1e-9 * float(np.abs(ordered).max(initial=0.0))
        gaps = gaps[gaps > noise]
        if len(gaps) < 2:  # fewer than three levels
            continue
        step = float(gaps.min())
        whole = np.abs(gaps / step - np.round(gaps / step)) <= 1e-6 * np.maximum(gaps / step, 1.0)
        if whole.all():
            floor[j] = step / 2.0
    scale: FloatArray = np.where(spread > 0, np.maximum(spread, floor), 1.0)
    return scale


def slow_features(train: FloatArray, limit_quantile: float) -> npt.NDArray[np.bool_]:
    """Features too slow in the training rows to put a ``limit_quantile`` limit on (see :class:`~.model.FitSettings`).

    Effective sample size of a column with lag-1 autocorrelation r1: rows x (1 - r1) / (1 + r1) (the AR(1)
    approximation). A quantile q needs at least 1 / (1 - q) independent values for one of them to lie beyond it;
    fewer, and the limit is an accident of where the slow movement stood. q is capped at 0.99 here (100 values),
    so that a limit at the training maximum does not make every feature slow. Constant columns are not slow.
    """
    rows = len(train)
    centred = train - train.mean(axis=0)
    before, after = centred[:-1], centred[1:]
    denominator = np.sqrt((before * before).sum(axis=0) * (after * after).sum(axis=0))
    safe = np.where(denominator > 0, denominator, 1.0)
    r1 = np.where(denominator > 0, (before * after).sum(axis=0) / safe, 0.0)
    effective = rows * (1.0 - r1) / (1.0 + r1)
    needed = 1.0 / (1.0 - min(limit_quantile, 0.99))
    slow: npt.NDArray[np.bool_] = effective < needed
    return slow
