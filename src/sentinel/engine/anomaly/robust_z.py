"""Robust rolling z-score for single metrics: how far a metric's recent median sits from its normal median.

Fitted on normal rows: each metric's median and MAD (scaled by 1.4826 so that it estimates a standard deviation
for Gaussian noise). Scoring takes the trailing median of each metric over ``window`` rows, which ignores isolated
spikes, and reports |rolling median - normal median| / scale. With several metrics the statistic is the largest of
their z-scores, so each metric is judged on its own; use PCA for metrics that move together.
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
        recent = trailing_median(history, rows, self.window)
        z: FloatArray = (recent - self.median) / self.scale
        return z

    def statistic(self, history: FloatArray, rows: FloatArray) -> FloatArray:
        z = np.abs(self.z_scores(history, rows))
        result: FloatArray = z.max(axis=1)
        return result

    def window_statistic(self, windows: FloatArray) -> FloatArray:
        """The statistic from ready-made trailing windows (rows, window, metrics; NaN = before the first row):
        what the live engine calls with many devices' windows at once."""
        recent = np.nanmedian(windows, axis=1)
        result: FloatArray = np.abs((recent - self.median) / self.scale).max(axis=1)
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


def fit_robust_z(train: FloatArray, window: int = 30) -> RobustZDetector:
    """Fit each metric's normal median and robust scale on normal rows."""
    if window < 1:
        raise ValueError(f"window must be at least 1 row, got {window}")
    if len(train) < 2:
        raise DatasetError(f"a robust z-score needs at least 2 training rows, got {len(train)}")
    median = np.median(train, axis=0)
    mad = np.median(np.abs(train - median), axis=0) * _MAD_TO_SIGMA
    # A quantised metric can have MAD 0 (most readings equal); fall back to its standard deviation, then to 1.
    spread = train.std(axis=0, ddof=1)
    scale = np.where(mad > _MIN_SCALE, mad, np.where(spread > _MIN_SCALE, spread, 1.0))
    return RobustZDetector(median, scale, window)
