"""Robust rolling z-score for single metrics: how far a metric's recent median sits from its normal median.

Fitted on normal rows: each metric's median and a scale, the larger of two estimates of its standard deviation
(see :func:`robust_scale`): the MAD times 1.4826 and the mean absolute deviation from the median times
sqrt(pi/2). Scoring takes the trailing median of each metric over ``window`` rows, which ignores isolated spikes,
and reports |rolling median - normal median| / scale. With several metrics the statistic is the largest of their
z-scores, so each metric is judged on its own; use PCA for metrics that move together.

The scale is fitted once and stored in the model; offline scoring (:meth:`RobustZDetector.statistic`, which the
reference evaluator also calls) and live scoring (:meth:`RobustZDetector.window_statistic`) both divide by that
stored scale through :meth:`RobustZDetector.standardise`, so they cannot disagree about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.detector import (
    FloatArray,
    Scalar,
    column_count_check,
    require_array,
    require_parameter,
)
from sentinel.engine.anomaly.windows import trailing_median
from sentinel.errors import DatasetError, ModelError

_MAD_TO_SIGMA = 1.4826
_MEAN_ABS_TO_SIGMA = float(np.sqrt(np.pi / 2))  # E|X - mu| = sigma * sqrt(2 / pi) for Gaussian X
_MIN_SCALE = 1e-9


@dataclass(frozen=True, eq=False)
class RobustZDetector:
    """Per-metric normal median and robust scale, and the trailing window the median is taken over."""

    median: FloatArray
    scale: FloatArray
    window: int
    kind: str = "robust_z"

    @property
    def n_features(self) -> int:
        return int(self.median.shape[0])

    @property
    def history_rows(self) -> int:
        return self.window - 1

    def z_scores(self, history: FloatArray, rows: FloatArray) -> FloatArray:
        """Signed z-score of each metric's trailing median, one column per metric."""
        column_count_check(self.kind, self.n_features, rows)
        return self.standardise(trailing_median(history, rows, self.window))

    def standardise(self, recent: FloatArray) -> FloatArray:
        """Signed z-scores of trailing medians (rows x metrics): the one place the fitted scale is applied."""
        z: FloatArray = (recent - self.median) / self.scale
        return z

    def statistic(self, history: FloatArray, rows: FloatArray) -> FloatArray:
        z = np.abs(self.z_scores(history, rows))
        result: FloatArray = z.max(axis=1)
        return result

    def window_statistic(self, windows: FloatArray) -> FloatArray:
        """The statistic from ready-made trailing windows (rows, window, metrics; NaN = before the first row):
        what the live engine calls with many devices' windows at once."""
        recent = cast(FloatArray, np.nanmedian(windows, axis=1))
        result: FloatArray = np.abs(self.standardise(recent)).max(axis=1)
        return result

    def parameters(self) -> dict[str, Scalar]:
        return {"window": self.window}

    def arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        return {"median": self.median, "scale": self.scale}

    @classmethod
    def restore(
        cls, parameters: Mapping[str, object], arrays: Mapping[str, npt.NDArray[np.generic]]
    ) -> RobustZDetector:
        """Rebuild from a model file, refusing a non-positive scale or window."""
        median = cast(FloatArray, require_array(arrays, "median", "robust_z", 1))
        scale = cast(FloatArray, require_array(arrays, "scale", "robust_z", 1))
        window = int(cast(int, require_parameter(parameters, "window", "robust_z", int)))
        if median.shape != scale.shape or np.any(scale <= 0) or not 1 <= window <= 100_000:
            raise ModelError(
                f"robust_z model is inconsistent: median {median.shape}, scale {scale.shape}, window {window}"
            )
        return cls(median, scale, window)


def robust_scale(train: FloatArray) -> FloatArray:
    """Each column's scale: max(1.4826 * MAD, sqrt(pi/2) * mean |x - median|), or 1 for a constant column.

    Both terms estimate the standard deviation of Gaussian data. The MAD is the robust one (up to half the rows
    can be outliers without it following them), but it implodes when half the rows or more share one value, as on
    a quantised sensor: there it is 0, and with any jitter on the readings it is of the order of the jitter, so a
    1e-6 perturbation would make the scale 1e-6 and the z-scores and the limit enormous. A fallback taken only when
    the MAD is exactly 0 does not help: the jitter moves the MAD just off 0. So the MAD gets a floor that cannot
    implode: a spread measure that is 0 only for a constant column and that moves by at most twice the largest
    change of a reading (the median and every order statistic move by at most that change), so that
    perturbations much smaller than the spread of the data change the scale only slightly (and then so do the
    scores and the limit). Of such measures the mean absolute deviation from the median is the robust one: an
    outlier weighs in linearly, not squared as in the standard deviation, and the median is what minimises it.
    The IQR would not do: it implodes like the MAD (when half the rows tie). On well-spread data the two estimates
    agree and taking the larger changes little; where they differ the larger is the safer (fewer false alarms).
    A column with no spread at all keeps a scale of 1 (in its own units): there is nothing to be relative to.
    """
    median = np.median(train, axis=0)
    deviation = np.abs(train - median)
    mad = np.median(deviation, axis=0) * _MAD_TO_SIGMA
    mean_abs = deviation.mean(axis=0) * _MEAN_ABS_TO_SIGMA
    scale: FloatArray = np.maximum(mad, mean_abs)
    return np.where(scale > _MIN_SCALE, scale, 1.0)


def fit_robust_z(train: FloatArray, window: int = 30) -> RobustZDetector:
    """Fit each metric's normal median and robust scale on normal rows."""
    if window < 1:
        raise ValueError(f"window must be at least 1 row, got {window}")
    if len(train) < 2:
        raise DatasetError(f"a robust z-score needs at least 2 training rows, got {len(train)}")
    return RobustZDetector(np.median(train, axis=0), robust_scale(train), window)
