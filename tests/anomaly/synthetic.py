"""Synthetic device-class data for the anomaly tests: four correlated metrics driven by two hidden factors."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
NAMES = ("pressure", "flow", "current", "temperature")
_MIXING = np.array([[1.0, 0.8, 0.6, 0.0], [0.0, 0.3, 0.5, 1.0]])
_CENTRE = np.array([5.0, 30.0, 2.0, 60.0])


def normal_rows(rows: int, seed: int) -> FloatArray:
    """Rows of normal operation: metrics tied together by two factors, plus a little independent noise."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(rows, 2))
    result: FloatArray = _CENTRE + factors @ _MIXING + 0.1 * rng.normal(size=(rows, 4))
    return result


def shifted_rows(rows: int, seed: int) -> FloatArray:
    """Normal rows with every metric pushed 4 standard deviations up: a level fault."""
    shifted: FloatArray = normal_rows(rows, seed) + 4.0 * normal_rows(2000, 99).std(axis=0)
    return shifted


def decorrelated_rows(rows: int, seed: int) -> FloatArray:
    """Each metric keeps its normal range, but flow no longer follows pressure: a broken correlation."""
    data = normal_rows(rows, seed)
    rng = np.random.default_rng(seed + 1)
    data[:, 1] = _CENTRE[1] + rng.permutation(data[:, 1] - _CENTRE[1])
    return data


def drifting_rows(rows: int, seed: int, rate: float = 0.004) -> FloatArray:
    """Normal rows whose operating point creeps: both hidden factors rise by ``rate`` standard deviations per row
    (as a plant warming up), so every metric drifts while their relations hold."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(rows, 2)) + np.arange(rows)[:, None] * rate * np.array([1.0, -0.6])
    result: FloatArray = _CENTRE + factors @ _MIXING + 0.1 * rng.normal(size=(rows, 4))
    return result
