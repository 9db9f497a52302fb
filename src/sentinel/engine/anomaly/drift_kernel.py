"""The drift recursion of :mod:`.drift` compiled, with the PCA or isolation forest statistic inside: one pass.

The recursion is sequential within a device (each row's gate depends on the offset the earlier rows left), so
numpy can only vectorise it across devices, one array step per row position: fine for many devices with a row
or two each, but a long series (offline scoring, or a live batch where few devices send many rows) pays the
Python overhead of a dozen numpy calls per row. Here the same arithmetic, in the same order per row, runs as
one compiled loop over every row of every group (numba, compiled once and cached on disk, ``cache=True``): the
PCA statistic of one row is a few dozen multiply-adds, the isolation forest's a walk down each tree (the numpy
version walks all rows one tree level per step instead). Detectors with history (robust z) never drift.

Results equal the numpy loop's to float rounding (numpy may sum a projection or a mean over trees in another
order); ``tests/anomaly/test_drift_fast.py`` checks both against a plain per-row reference.
numba is imported on first use, not at import time, so that commands which never score stay quick to start.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.detector import Detector, FloatArray
from sentinel.engine.anomaly.iforest import IsolationForestDetector, average_path_length
from sentinel.engine.anomaly.pca import PcaDetector

IntArray = npt.NDArray[np.int64]
WHICH = {"t2": 0, "q": 1, "combined": 2}  # the kernel's code for each PCA statistic
FOREST = 3  # the kernel's code for an isolation forest


def _loop(  # pragma: no cover - runs compiled; its Python twin is drift.recentred_loop
    rows: Any, heads: Any, lengths: Any, ids: Any, offset: Any, past: Any, window_sum: Any, window_count: Any,
    limit: float, level_gain: float, trend_gain: float, clip: float, centre: Any, scale: Any,
    mean: Any, pscale: Any, components: Any, variances: Any, which: int, t2_ref: float, q_ref: float,
    left: Any, right: Any, feature: Any, threshold: Any, leaf_path: Any, roots: Any, max_depth: int,
    path_scale: float, raw: Any, smoothed: Any,
) -> None:  # fmt: skip
    f = rows.shape[1]
    k = components.shape[0]
    span = past.shape[1]
    shifted = np.empty(f)
    standard = np.empty(f)
    scores = np.empty(k)
    level = np.empty(f)
    trend = np.empty(f)
    for g in range(len(heads)):
        head, n, gid = heads[g], lengths[g], ids[g]
        for j in range(f):
            level[j] = offset[gid, 0, j]
            trend[j] = offset[gid, 1, j]
        wsum, wcount = window_sum[g], window_count[g]
        for r in range(n):
            at = head + r
            for j in range(f):
                level[j] += trend[j]
                shifted[j] = rows[at, j] - level[j]
            if which == FOREST:  # isolation forest: walk every tree (as IsolationForestDetector.statistic)
                for j in range(f):
                    standard[j] = np.float64(np.float32(shifted[j]))  # scikit-learn compares float32 inputs
                total = 0.0
                for t in range(len(roots)):
                    node = roots[t]
                    for _ in range(max_depth + 1):
                        if left[node] < 0:
                            break
                        node = left[node] if standard[feature[node]] <= threshold[node] else right[node]
                    total += leaf_path[node]
                value = 2.0 ** (-(total / len(roots)) / path_scale) if path_scale > 0 else 1.0
            else:  # PCA: T², Q or the larger of the two against their training references
                for j in range(f):
                    standard[j] = (shifted[j] - mean[j]) / pscale[j]
                t2 = 0.0
                for c in range(k):
                    s = 0.0
                    for j in range(f):
                        s += standard[j] * components[c, j]
                    scores[c] = s
                    t2 += s * s / variances[c]
                q = 0.0
                for j in range(f):
                    back = 0.0
                    for c in range(k):
                        back += scores[c] * components[c, j]
                    residual = standard[j] - back
                    q += residual * residual
                if which == 0:
                    value = t2
                elif which == 1:
                    value = q
                else:
                    a, b = t2 / t2_ref, q / q_ref
                    value = np.nan if np.isnan(a) or np.isnan(b) else (a if a >= b else b)  # as np.maximum
            average = (wsum + value) / (wcount + 1.0)
            raw[at] = value
            smoothed[at] = average
            if span:  # a missing value (NaN) neither enters the window nor counts in it
                leaving = past[gid, r] if r < span else raw[at - span]
                entering_known, leaving_known = np.isfinite(value), np.isfinite(leaving)
                wsum += (value if entering_known else 0.0) - (leaving if leaving_known else 0.0)
                wcount += (1.0 if entering_known else 0.0) - (1.0 if leaving_known else 0.0)
            # Only a complete row judged normal moves the centre: NaN in a row (a reading missing) would
            # otherwise turn the offset into NaN for good.
            normal = average <= limit
            for j in range(f):
                if not np.isfinite(shifted[j]):
                    normal = False
            if normal:
                for j in range(f):
                    v = (shifted[j] - centre[j]) / scale[j]
                    if v < -clip:
                        v = -clip
                    elif v > clip:
                        v = clip
                    step = v * scale[j]
                    level[j] += level_gain * step
                    trend[j] += trend_gain * step
        # The group's last ``span`` statistics: this batch's tail, older ones from before the batch.
        tail = head + n - 1
        last = np.empty(span)
        for j in range(span):
            source = tail - span + 1 + j
            last[j] = raw[source] if source >= head else past[gid, span + (source - head)]
        for j in range(span):
            past[gid, j] = last[j]
        for j in range(f):
            offset[gid, 0, j] = level[j]
            offset[gid, 1, j] = trend[j]


@cache
def _compiled() -> Callable[..., None]:
    import numba  # only when a drift model scores: numba's import costs a fraction of a second

    compiled: Callable[..., None] = numba.njit(cache=True, nogil=True)(_loop)
    return compiled


def supported(detector: Detector) -> bool:
    """Whether :func:`compiled_recentred` can score this detector."""
    return isinstance(detector, PcaDetector | IsolationForestDetector)


def compiled_recentred(
    detector: Detector,
    rows: FloatArray,
    heads: IntArray,
    lengths: IntArray,
    ids: IntArray,
    offset: FloatArray,
    past: FloatArray,
    window_sum: FloatArray,
    window_count: FloatArray,
    *,
    limit: float,
    level_gain: float,
    trend_gain: float,
    clip: float,
    centre: FloatArray,
    scale: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Raw and smoothed statistic of every row; ``offset`` and ``past`` updated in place (see :mod:`.drift`)."""
    n = len(rows)
    raw, smoothed = np.empty(n), np.empty(n)
    no_int, no_float = np.empty(0, dtype=np.int64), np.empty(0)
    pca: tuple[object, ...]
    forest: tuple[object, ...]
    if isinstance(detector, PcaDetector):
        pca = (
            detector.mean, detector.scale, np.ascontiguousarray(detector.components), detector.variances,
            WHICH[detector.which], detector.t2_reference, detector.q_reference,
        )  # fmt: skip
        forest = (no_int, no_int, no_int, no_float, no_float, no_int, 0, 0.0)
    elif isinstance(detector, IsolationForestDetector):
        pca = (no_float, no_float, np.empty((0, 0)), no_float, FOREST, 1.0, 1.0)
        path_scale = float(average_path_length(np.array([detector.max_samples], dtype=np.float64))[0])
        nodes = [np.ascontiguousarray(a, dtype=np.int64) for a in (detector.left, detector.right, detector.feature)]
        forest = (
            *nodes, np.ascontiguousarray(detector.threshold, dtype=np.float64),
            np.ascontiguousarray(detector.leaf_path, dtype=np.float64),
            np.ascontiguousarray(detector.roots, dtype=np.int64), int(detector.max_depth), path_scale,
        )  # fmt: skip
    else:
        raise TypeError(f"no compiled drift loop for a {detector.kind} detector")
    _compiled()(
        np.ascontiguousarray(rows, dtype=np.float64), heads.astype(np.int64), lengths.astype(np.int64),
        ids.astype(np.int64), offset, past, window_sum, window_count, float(limit), level_gain, trend_gain, clip,
        np.ascontiguousarray(centre, dtype=np.float64), np.ascontiguousarray(scale, dtype=np.float64),
        *pca, *forest, raw, smoothed,
    )  # fmt: skip
    return raw, smoothed


def warm_up(detector: Detector) -> None:
    """Compile the loop now (or load it from numba's disk cache), so that the first batch scored does not wait.

    The first compile in a fresh environment takes a few seconds, a load from the cache about half a second
    (mostly numba's import); the live engine calls this when it loads a drift-following model.
    """
    if not supported(detector):
        return
    f = detector.n_features
    one, zero = np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    compiled_recentred(
        detector, np.zeros((1, f)), zero, one, zero, np.zeros((1, 2, f)), np.full((1, 1), np.nan), np.zeros(1),
        np.zeros(1), limit=1.0, level_gain=0.1, trend_gain=0.01, clip=3.0, centre=np.zeros(f), scale=np.ones(f),
    )  # fmt: skip
