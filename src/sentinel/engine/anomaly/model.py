"""An anomaly model: a fitted detector, its feature names, and the control limit that turns a score into an alarm.

Scoring a batch, for every row: the detector's statistic, smoothed by a trailing mean over ``smoothing`` rows
(noise in a per-row statistic makes limits either loose or chattering); the normalised score, that smoothed value
divided by the limit (1.0 = on the limit, 2.0 = twice past it: the live engine grades from this and from how long it
stays above 1); and the alarm, 1 once the score has been above 1 for ``persistence`` rows in a row. Rows before
the windows first fill (``warmup_rows`` of a fresh stream) are scored but never alarm.

The limit is the ``limit_quantile`` quantile of the smoothed statistic over the training rows, times ``margin``:
derived from the data, not from a distribution assumed for it. :class:`Scorer` carries the rows, statistics and
over-limit run a window needs across micro-batches, so a stream scored batch by batch gets the same numbers as the
whole series scored at once; ``sentinel anomaly score`` is one batch through the same class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.detector import Detector, FloatArray
from sentinel.engine.anomaly.iforest import fit_isolation_forest
from sentinel.engine.anomaly.pca import PcaStatistic, fit_pca
from sentinel.engine.anomaly.robust_z import fit_robust_z
from sentinel.engine.anomaly.windows import run_lengths, trailing_mean
from sentinel.errors import DatasetError, ModelError

DetectorKind = Literal["pca", "iforest", "robust_z"]
DETECTOR_KINDS: tuple[DetectorKind, ...] = ("pca", "iforest", "robust_z")


@dataclass(frozen=True)
class FitSettings:
    """How to fit a model. The defaults are the PCA setting bench/skab.py selects on SKAB valve1 files 0-7."""

    detector: DetectorKind = "pca"
    smoothing: int = 10
    limit_quantile: float = 0.99
    margin: float = 1.0
    persistence: int = 1
    pca_variance: float = 0.9
    pca_statistic: PcaStatistic = "combined"
    trees: int = 100
    max_samples: int = 256
    seed: int = 0
    window: int = 30

    def __post_init__(self) -> None:
        if self.detector not in DETECTOR_KINDS:
            raise ValueError(f"detector must be one of {', '.join(DETECTOR_KINDS)}, got {self.detector!r}")
        if self.smoothing < 1 or self.persistence < 1 or self.window < 1 or self.trees < 1:
            raise ValueError("smoothing, persistence, window and trees must be at least 1")
        if not 0.0 < self.limit_quantile <= 1.0 or self.margin <= 0:
            raise ValueError("limit_quantile must be in (0, 1] and margin positive")


@dataclass(frozen=True)
class TrainingInfo:
    """Where the training data came from: rows used and the first and last time stamps (if known)."""

    rows: int
    first: str | None = None
    last: str | None = None
    source: str | None = None


@dataclass(frozen=True, eq=False)
class AnomalyModel:
    """A fitted detector with everything needed to score and to explain its scores."""

    detector: Detector
    feature_names: tuple[str, ...]
    limit: float
    smoothing: int
    persistence: int
    limit_quantile: float
    margin: float
    training: TrainingInfo

    @property
    def kind(self) -> str:
        return self.detector.kind

    def __post_init__(self) -> None:
        if len(self.feature_names) != self.detector.n_features:
            raise ModelError(
                f"model names {len(self.feature_names)} features but its detector takes {self.detector.n_features}"
            )
        if not (np.isfinite(self.limit) and self.limit > 0):
            raise ModelError(f"model limit must be a positive number, got {self.limit}")
        if self.smoothing < 1 or self.persistence < 1:
            raise ModelError("model smoothing and persistence must be at least 1 row")

    @property
    def warmup_rows(self) -> int:
        """Rows a fresh stream needs before every window behind a score is full; earlier rows never alarm."""
        return self.detector.history_rows + self.smoothing - 1

    def score(self, rows: FloatArray) -> Scores:
        """Score a whole series from a fresh start (the offline path: one batch through a new :class:`Scorer`)."""
        return Scorer(self).score_batch(rows)


@dataclass(frozen=True)
class Scores:
    """Per-row results of one batch: raw smoothed statistic, score = statistic / limit, and the 0/1 alarm."""

    statistic: FloatArray
    score: FloatArray
    alarm: npt.NDArray[np.bool_]


@dataclass
class Scorer:
    """Scores consecutive micro-batches of one series, keeping what the windows need between them."""

    model: AnomalyModel
    _rows: FloatArray = field(init=False)
    _statistics: FloatArray = field(init=False)
    _over_run: int = field(init=False, default=0)
    _seen: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rows = np.empty((0, self.model.detector.n_features))
        self._statistics = np.empty(0)

    def score_batch(self, rows: FloatArray) -> Scores:
        """Score the next rows of the series (rows x features, in the model's feature order)."""
        rows = np.asarray(rows, dtype=np.float64)
        detector = self.model.detector
        if rows.ndim != 2 or rows.shape[1] != detector.n_features:
            raise ModelError(
                f"model expects rows of {detector.n_features} features "
                f"({', '.join(self.model.feature_names)}), got shape {rows.shape}"
            )
        raw = detector.statistic(self._rows, rows)
        smoothed = trailing_mean(self._statistics, raw, self.model.smoothing)
        score = smoothed / self.model.limit
        # NaN (a missing reading) is not over the limit; it breaks a run instead of extending it.
        over = np.nan_to_num(score, nan=0.0) > 1.0
        # Until the windows are full (a fresh stream, an engine restart) the statistic rests on fewer rows and
        # is noisier than the limit assumes: such rows are scored but may not alarm, nor start a run.
        warm = np.arange(self._seen, self._seen + len(rows)) >= self.model.warmup_rows
        runs = run_lengths(over & warm, self._over_run)
        alarm = runs >= self.model.persistence
        self._seen += len(rows)
        if detector.history_rows:
            self._rows = np.concatenate([self._rows, rows])[-detector.history_rows :]
        if self.model.smoothing > 1:
            self._statistics = np.concatenate([self._statistics, raw])[-(self.model.smoothing - 1) :]
        if len(runs):
            self._over_run = int(runs[-1])
        return Scores(smoothed, score, alarm)


def fit_detector(train: FloatArray, settings: FitSettings) -> Detector:
    """Fit the detector ``settings.detector`` names on normal rows."""
    if settings.detector == "pca":
        return fit_pca(train, settings.pca_variance, settings.pca_statistic)
    if settings.detector == "iforest":
        return fit_isolation_forest(train, settings.trees, settings.max_samples, settings.seed)
    return fit_robust_z(train, settings.window)


def fit_model(
    train: FloatArray,
    feature_names: tuple[str, ...] | list[str],
    settings: FitSettings | None = None,
    *,
    first: str | None = None,
    last: str | None = None,
    source: str | None = None,
) -> AnomalyModel:
    """Fit a detector on normal rows and derive its limit from the same rows' smoothed statistic."""
    settings = settings or FitSettings()
    train = np.asarray(train, dtype=np.float64)
    names = tuple(feature_names)
    if train.ndim != 2 or train.shape[1] != len(names) or len(names) == 0:
        raise DatasetError(f"training rows have shape {train.shape} but {len(names)} feature names were given")
    if not np.all(np.isfinite(train)):
        bad_row, bad_column = np.argwhere(~np.isfinite(train))[0]
        raise DatasetError(f"training row {bad_row}, feature {names[bad_column]!r} is not a finite number")
    detector = fit_detector(train, settings)
    provisional = AnomalyModel(
        detector, names, 1.0, settings.smoothing, settings.persistence, settings.limit_quantile,
        settings.margin, TrainingInfo(len(train), first, last, source),
    )  # fmt: skip
    statistic = provisional.score(train).statistic
    # The limit comes from rows with full windows, the only rows it will ever be compared with.
    settled = statistic[provisional.warmup_rows :] if len(train) > 2 * provisional.warmup_rows else statistic
    limit = float(np.quantile(settled, settings.limit_quantile)) * settings.margin
    if not limit > 0:
        raise DatasetError("training data gives a zero control limit: the features never vary")
    return AnomalyModel(
        detector, names, limit, settings.smoothing, settings.persistence, settings.limit_quantile,
        settings.margin, provisional.training,
    )  # fmt: skip
