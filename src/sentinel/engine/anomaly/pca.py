"""Multivariate PCA detector: Hotelling T² inside the principal subspace, Q (SPE) outside it.

Fitted on standardised normal data. T² measures how far a row lies from the training centre along the retained
components, each scaled by its variance; Q is the squared distance of the row from that subspace, i.e. what the
components cannot explain: a broken correlation between metrics that each stay in range. ``statistic`` chooses
which one the detector reports; ``combined`` divides each by its own 99th percentile on the training rows and takes
the larger, so that either kind of departure shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.detector import (
    FloatArray,
    Scalar,
    column_count_check,
    require_array,
    require_parameter,
)
from sentinel.engine.anomaly.features import feature_scale
from sentinel.errors import DatasetError, ModelError

PcaStatistic = Literal["t2", "q", "combined"]
PCA_STATISTICS: tuple[PcaStatistic, ...] = ("t2", "q", "combined")
_REFERENCE_QUANTILE = 0.99


@dataclass(frozen=True, eq=False)
class PcaDetector:
    """Fitted PCA model; ``components`` is (k, p) with orthonormal rows, ``variances`` their k variances."""

    mean: FloatArray
    scale: FloatArray
    components: FloatArray
    variances: FloatArray
    which: PcaStatistic
    t2_reference: float
    q_reference: float
    kind: str = "pca"

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    @property
    def history_rows(self) -> int:
        return 0

    def t2_and_q(self, rows: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Hotelling T² and Q (squared prediction error) of each row."""
        column_count_check(self.kind, self.n_features, rows)
        standard = (rows - self.mean) / self.scale
        scores = standard @ self.components.T
        t2 = np.sum(scores * scores / self.variances, axis=1)
        residual = standard - scores @ self.components
        q = np.sum(residual * residual, axis=1)
        return t2, q

    def statistic(self, history: FloatArray, rows: FloatArray) -> FloatArray:
        t2, q = self.t2_and_q(rows)
        if self.which == "t2":
            return t2
        if self.which == "q":
            return q
        return np.maximum(t2 / self.t2_reference, q / self.q_reference)

    def parameters(self) -> dict[str, Scalar]:
        return {
            "statistic": self.which,
            "components": int(self.components.shape[0]),
            "t2_reference": self.t2_reference,
            "q_reference": self.q_reference,
        }

    def arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        return {
            "mean": self.mean,
            "scale": self.scale,
            "components": self.components,
            "variances": self.variances,
        }

    @classmethod
    def restore(cls, parameters: Mapping[str, object], arrays: Mapping[str, npt.NDArray[np.generic]]) -> PcaDetector:
        """Rebuild from a model file's parameters and arrays, refusing inconsistent ones."""
        which = require_parameter(parameters, "statistic", "pca", str)
        if which not in PCA_STATISTICS:
            raise ModelError(f"pca model statistic {which!r} is not one of {', '.join(PCA_STATISTICS)}")
        mean = cast(FloatArray, require_array(arrays, "mean", "pca", 1))
        scale = cast(FloatArray, require_array(arrays, "scale", "pca", 1))
        components = cast(FloatArray, require_array(arrays, "components", "pca", 2))
        variances = cast(FloatArray, require_array(arrays, "variances", "pca", 1))
        p = mean.shape[0]
        k = components.shape[0]
        if scale.shape != (p,) or components.shape[1] != p or variances.shape != (k,) or not 1 <= k <= p:
            raise ModelError(
                f"pca model arrays disagree: mean {mean.shape}, scale {scale.shape}, "
                f"components {components.shape}, variances {variances.shape}"
            )
        if np.any(scale <= 0) or np.any(variances <= 0):
            raise ModelError("pca model has a non-positive scale or component variance")
        t2_ref = float(cast(float, require_parameter(parameters, "t2_reference", "pca", float)))
        q_ref = float(cast(float, require_parameter(parameters, "q_reference", "pca", float)))
        if not (t2_ref > 0 and q_ref > 0):
            raise ModelError("pca model references for the combined statistic must be positive")
        return cls(mean, scale, components, variances, which, t2_ref, q_ref)


def fit_pca(train: FloatArray, variance: float = 0.9, statistic: PcaStatistic = "t2") -> PcaDetector:
    """Fit on normal rows, keeping the fewest components that explain ``variance`` of the standardised data."""
    if not 0.0 < variance <= 1.0:
        raise ValueError(f"variance to explain must be in (0, 1], got {variance}")
    if statistic not in PCA_STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(PCA_STATISTICS)}, got {statistic!r}")
    rows, p = train.shape
    if rows < p + 2:
        raise DatasetError(f"PCA needs more training rows than features + 1: {rows} rows for {p} features")
    mean = train.mean(axis=0)
    scale = feature_scale(train)
    standard = (train - mean) / scale
    covariance = standard.T @ standard / (rows - 1)
    # A quantised feature's scale may be its floor (half a step), above its spread: its variance is raised to
    # that floor too (rounding noise, independent of the rest), or T² would divide by the spread again.
    moved = np.diag(covariance) > 0
    covariance[np.diag_indices(p)] = np.where(moved, np.maximum(np.diag(covariance), 1.0), 0.0)
    eigen, vectors = np.linalg.eigh(covariance)
    eigen, vt = np.maximum(eigen[::-1], 0.0), vectors[:, ::-1].T
    usable = eigen > eigen[0] * 1e-10 if eigen[0] > 0 else np.zeros_like(eigen, dtype=bool)
    if not usable.any():
        raise DatasetError("PCA training data has no variation in any feature")
    explained = np.cumsum(eigen[usable]) / eigen[usable].sum()
    k = min(int(np.searchsorted(explained, variance - 1e-12) + 1), int(usable.sum()))
    detector = PcaDetector(mean, scale, vt[:k].copy(), eigen[:k].copy(), statistic, 1.0, 1.0)
    t2, q = detector.t2_and_q(train)
    t2_ref = float(np.quantile(t2, _REFERENCE_QUANTILE))
    # Q is exactly 0 when every component is kept; any residual at all is then a departure.
    q_ref = float(np.quantile(q, _REFERENCE_QUANTILE))
    return PcaDetector(mean, scale, vt[:k].copy(), eigen[:k].copy(), statistic, max(t2_ref, 1e-12), max(q_ref, 1e-12))
