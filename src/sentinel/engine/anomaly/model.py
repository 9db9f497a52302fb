"""An anomaly model: a fitted detector, its feature names, and the control limit that turns a score into an alarm.

Scoring a batch, for every row: the detector's statistic on the row (minus the device's drift offset, see
:mod:`.drift`), smoothed by a trailing mean over ``smoothing`` rows (noise in a per-row statistic makes limits
either loose or chattering); the normalised score, that smoothed value divided by the limit (1.0 = on the limit,
2.0 = twice past it: the live engine grades from this and from how long it stays above 1); and the alarm, 1 once
the score has been above 1 for ``persistence`` rows in a row, and 1 from then on until the score falls below
``clear`` (hysteresis). Rows before the windows first fill (``warmup_rows`` of a fresh stream) are scored but
never alarm.

The limit is the ``limit_quantile`` quantile of the smoothed statistic over the training rows, times ``margin``:
derived from the data, not from a distribution assumed for it, and computed with the drift-following centre
running over the training rows as it will in use. By default the rows it is taken from are held back: each of
``limit_folds`` consecutive blocks of the training rows is scored by a model fitted on the other blocks
(:func:`held_back_statistics`), so the limit states the false-alarm rate on rows the detector has not seen (the
in-sample quantile is the floor). Features whose training rows are too slow to support that quantile (see
:func:`.features.slow_features`) are kept in the model's feature list but not used by the detector. A model
of one sensor is a 3-sigma Shewhart chart of its readings instead (``one_sensor_sigma`` in :class:`FitSettings`).
:class:`Scorer` carries the rows, statistics, drift offsets and over-limit run a window needs across
micro-batches, so a stream scored batch by batch gets the same numbers as the whole series scored at once;
``sentinel anomaly score`` is one batch through the same class, and the live engine (:mod:`.live`) calls the same
:func:`~.drift.recentred_statistics` for many devices at once.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from sentinel.engine.anomaly.detector import Detector, FloatArray
from sentinel.engine.anomaly.drift import recentred_statistics
from sentinel.engine.anomaly.features import feature_scale, slow_features
from sentinel.engine.anomaly.iforest import fit_isolation_forest
from sentinel.engine.anomaly.pca import PcaDetector, PcaStatistic, fit_pca
from sentinel.engine.anomaly.robust_z import fit_robust_z
from sentinel.engine.anomaly.windows import held_alarm, run_lengths, trailing_mean
from sentinel.errors import DatasetError, ModelError

DetectorKind = Literal["pca", "iforest", "robust_z"]
DETECTOR_KINDS: tuple[DetectorKind, ...] = ("pca", "iforest", "robust_z")


@dataclass(frozen=True)
class FitSettings:
    """How to fit a model. The defaults are chosen from principle and the training data, not tuned on labels.

    Defaults and why (none of them was chosen by scores on SKAB valve1's labels; ``bench/anomaly_defaults.py``
    measures what they give there and on NAB, beside the tuned settings of ``bench/skab.py``):

    - ``detector="pca"``, ``pca_statistic="combined"``, ``pca_variance=0.9``: T² and Q, so that both a level
      outside the normal range and a broken relation between sensors show (the published SKAB reference
      detector, kept from before).
    - ``limit_quantile=0.99``, ``margin=1.0``, ``limit_folds=4``: the limit is the 99th percentile of the
      smoothed statistic over training rows held back from the detector's fit (4 consecutive blocks, each
      scored by a model of the other three, drift following running), and never below the in-sample 99th
      percentile: a stated false-alarm rate of about 1 % on rows the model has not seen. A detector fits its
      own rows best, and a short training period hides how far the plant moves next to it; the held-back
      blocks show both, so a short or drifting training period gets a wider limit by itself and a long steady
      one nearly the in-sample limit. A block too short for the smoothing windows (under twice the warm-up
      rows) or whose complement cannot be fitted is skipped, so with few training rows the limit is in-sample.
      ``limit_folds=0``: the in-sample quantile alone (the limit before).
    - ``smoothing=10``: the statistic is averaged over 10 rows, so one noisy row cannot alarm; ``persistence=1``
      (the smoothing already asks for a run of high rows).
    - ``clear=None`` = 0.9 for PCA and robust z: a raised alarm clears when the score falls below 0.9 of the
      limit, not at the limit: a deadband, the alarm-management remedy for a score hovering at its limit
      (ISA-18.2 / EEMUA 191), and the same raise 1.0 / clear 0.9 as the shipped packs' anomaly levels, so the
      offline alarm is the one the live engine grades. Measured without labels (``bench/anomaly_defaults.py``):
      alarm activations per 1,000 rows fall from 9.5 to 6.0 on SKAB anomaly-free cut into valve1-sized pieces,
      from 5.8 to 3.6 on valve1's rows; the share of alarmed rows of anomaly-free rises by about one point. A
      share of the limit is a deadband only where the statistic is a distance (T², Q, |z|): the isolation
      forest's score is bounded below 1 and its normal rows crowd just under the limit, so 0.9 of it is normal
      operation (normal rows alarmed rose from 1.7 % to 7.2 % in a test) and its default is 1.0, no deadband.
    - ``drop_slow=True``: a feature whose training rows have an effective sample size (rows x (1 - r1) /
      (1 + r1), r1 its lag-1 autocorrelation) under 1 / (1 - limit_quantile), i.e. under 100 for the 0.99
      quantile, is not used: its training rows hold too few independent values to put a 1 % limit on its level
      (a thermal sensor drifting through the whole training period). It stays in the model's feature list (the
      rows keep their shape); the fit reports it. When every feature is slow all are kept.
    - ``drift=True``, ``drift_rows=0`` (= as many rows as the training data): the centre follows slow drift of
      rows judged normal (:mod:`.drift`), with the memory of the training period itself. Detectors that look
      back over rows (``robust_z``) do not drift.
    - ``one_sensor_sigma=3.0``: when the PCA detector (T² or combined) uses one feature, the model is a
      Shewhart chart of that sensor instead: no smoothing, and the limit is |reading - training mean| = 3
      training standard deviations (T² of one feature is its squared z-score; the limit is 9 in T² units),
      times ``margin``; the quantile, ``limit_folds`` and ``smoothing`` settings do not apply. One sensor has no
      relation between sensors to model, and the empirical quantile of its smoothed squared z-score is an
      accident of the training part's shape: a few spikes in it put the limit far out, a bounded periodic
      signal puts it at the peak with no margin. The 3-sigma convention (0.27 % of readings under Gaussian
      noise, at most 11 % for any distribution) holds in both cases. Measured on the NAB development files
      (``bench/anomaly_defaults.py``): 43 of 50 windows at 60.0 false alarms per 1,000 points (60.2 with the
      deadband above), against 29 at 69.6 with the quantile limit and 42 at 59.6 for a plain 3-sigma limit
      without drift following; 3 is the convention, not a value tuned on those labels. ``0``: one sensor is
      limited like several.
    """

    detector: DetectorKind = "pca"
    smoothing: int = 10
    limit_quantile: float = 0.99
    margin: float = 1.0
    persistence: int = 1
    clear: float | None = None
    pca_variance: float = 0.9
    pca_statistic: PcaStatistic = "combined"
    trees: int = 100
    max_samples: int = 256
    seed: int = 0
    window: int = 30
    drop_slow: bool = True
    drift: bool = True
    drift_rows: int = 0
    limit_folds: int = 4
    one_sensor_sigma: float = 3.0

    def __post_init__(self) -> None:
        if self.detector not in DETECTOR_KINDS:
            raise ValueError(f"detector must be one of {', '.join(DETECTOR_KINDS)}, got {self.detector!r}")
        if self.smoothing < 1 or self.persistence < 1 or self.window < 1 or self.trees < 1:
            raise ValueError("smoothing, persistence, window and trees must be at least 1")
        if self.clear is not None and not 0.0 < self.clear <= 1.0:
            raise ValueError(f"clear must be in (0, 1] (a share of the limit), got {self.clear}")
        if not 0.0 < self.limit_quantile <= 1.0 or self.margin <= 0:
            raise ValueError("limit_quantile must be in (0, 1] and margin positive")
        if self.limit_folds < 0:
            raise ValueError("limit_folds must be 0 (limit from the training rows themselves) or more")
        if not (self.one_sensor_sigma >= 0 and np.isfinite(self.one_sensor_sigma)):
            raise ValueError("one_sensor_sigma must be 0 (one sensor limited like several) or a positive number")
        if self.drift_rows < 0:
            raise ValueError("drift_rows must be 0 (as many as the training rows) or more")


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
    used: tuple[int, ...] | None = None  # feature columns the detector takes; None: all of them
    drift_rows: int = 0  # memory of the drift-following centre in rows; 0: no drift following
    centre: FloatArray | None = None  # training mean of the used columns (drift clipping)
    centre_scale: FloatArray | None = None  # training standard deviation of the used columns (same)
    clear: float = 1.0  # a raised alarm holds until the score falls below this share of the limit; 1.0: no deadband

    @property
    def kind(self) -> str:
        return self.detector.kind

    @property
    def columns(self) -> tuple[int, ...]:
        """Indices of the feature columns the detector is given."""
        return self.used if self.used is not None else tuple(range(len(self.feature_names)))

    @property
    def ignored(self) -> tuple[str, ...]:
        """Feature names in the rows that the detector does not use (slow in training)."""
        return tuple(name for i, name in enumerate(self.feature_names) if i not in self.columns)

    def __post_init__(self) -> None:
        columns = self.columns
        distinct = len(set(columns)) == len(columns)
        if not columns or not distinct or not all(0 <= i < len(self.feature_names) for i in columns):
            raise ModelError(f"model uses feature columns {columns}, not distinct columns of {len(self.feature_names)}")
        if len(columns) != self.detector.n_features:
            raise ModelError(f"model uses {len(columns)} features but its detector takes {self.detector.n_features}")
        if self.drift_rows < 0 or (self.drift_rows and self.detector.history_rows):
            raise ModelError(f"model drift memory {self.drift_rows} rows is invalid for a {self.kind} detector")
        if self.drift_rows:
            for name, array in (("centre", self.centre), ("centre_scale", self.centre_scale)):
                if array is None or array.shape != (len(columns),) or not np.all(np.isfinite(array)):
                    raise ModelError(f"model with drift following needs a finite {name} per used feature")
            assert self.centre_scale is not None
            if np.any(self.centre_scale <= 0):
                raise ModelError("model centre_scale must be positive")
        if not (np.isfinite(self.limit) and self.limit > 0):
            raise ModelError(f"model limit must be a positive number, got {self.limit}")
        if self.smoothing < 1 or self.persistence < 1:
            raise ModelError("model smoothing and persistence must be at least 1 row")
        if not (np.isfinite(self.clear) and 0.0 < self.clear <= 1.0):
            raise ModelError(f"model clear must be in (0, 1], got {self.clear}")

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
    _alarm_on: bool = field(init=False, default=False)
    _seen: int = field(init=False, default=0)
    _offset: FloatArray = field(init=False)
    _past: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        self._rows = np.empty((0, self.model.detector.n_features))
        self._statistics = np.empty(0)
        self._offset = np.zeros((1, 2, self.model.detector.n_features))
        self._past = np.full((1, self.model.smoothing - 1), np.nan)

    def __deepcopy__(self, memo: dict[int, object]) -> Scorer:
        """A copy of the scoring state (arrays written in place are copied), sharing the immutable model."""
        twin = copy.copy(self)
        twin._offset, twin._past = self._offset.copy(), self._past.copy()
        return twin

    def score_batch(self, rows: FloatArray) -> Scores:
        """Score the next rows of the series (rows x features, in the model's feature order)."""
        return self._score(rows, self.model.limit)

    def _score(self, rows: FloatArray, limit: float) -> Scores:
        rows = np.asarray(rows, dtype=np.float64)
        model = self.model
        detector = model.detector
        if rows.ndim != 2 or rows.shape[1] != len(model.feature_names):
            raise ModelError(
                f"model expects rows of {len(model.feature_names)} features "
                f"({', '.join(model.feature_names)}), got shape {rows.shape}"
            )
        if model.used is not None:
            rows = rows[:, list(model.used)]
        if model.drift_rows:
            assert model.centre is not None
            assert model.centre_scale is not None
            raw, smoothed = recentred_statistics(
                detector, rows, np.zeros(len(rows), dtype=np.int64), self._offset, self._past,
                limit=limit, drift_rows=model.drift_rows, centre=model.centre, scale=model.centre_scale,
            )  # fmt: skip
        else:
            raw = detector.statistic(self._rows, rows)
            smoothed = trailing_mean(self._statistics, raw, model.smoothing)
        score = smoothed / limit
        # NaN (a missing reading) is not over the limit; it breaks a run instead of extending it.
        over = np.nan_to_num(score, nan=0.0) > 1.0
        # Until the windows are full (a fresh stream, an engine restart) the statistic rests on fewer rows and
        # is noisier than the limit assumes: such rows are scored but may not alarm, nor start a run.
        warm = np.arange(self._seen, self._seen + len(rows)) >= self.model.warmup_rows
        runs = run_lengths(over & warm, self._over_run)
        alarm = held_alarm(runs >= self.model.persistence, score >= self.model.clear, warm, self._alarm_on)
        self._seen += len(rows)
        if detector.history_rows:
            self._rows = np.concatenate([self._rows, rows])[-detector.history_rows :]
        if self.model.smoothing > 1:
            self._statistics = np.concatenate([self._statistics, raw])[-(self.model.smoothing - 1) :]
        if len(runs):
            self._over_run = int(runs[-1])
            self._alarm_on = bool(alarm[-1])
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
    used: tuple[int, ...] | None = None
    if settings.drop_slow and len(train) > 2:
        slow = slow_features(train, settings.limit_quantile)
        if slow.any() and not slow.all():
            used = tuple(int(i) for i in np.flatnonzero(~slow))
    one_sensor = _one_sensor_chart(train.shape[1] if used is None else len(used), settings)
    if one_sensor:
        settings = replace(settings, smoothing=1)  # the limit is on each reading (see FitSettings)
    detector = fit_detector(train[:, list(used)] if used is not None else train, settings)
    provisional = _unlimited(train, names, detector, used, settings, TrainingInfo(len(train), first, last, source))
    if one_sensor:
        assert isinstance(detector, PcaDetector)
        # T² of one feature is its squared z-score: sigma² is the Shewhart limit |x - mean| = sigma x sd.
        chart = settings.one_sensor_sigma**2 / (detector.t2_reference if detector.which == "combined" else 1.0)
        return replace(provisional, limit=chart * settings.margin)
    # While fitting there is no limit yet: every training row moves the drift centre.
    statistic = Scorer(provisional)._score(train, np.inf).statistic
    # The limit comes from rows with full windows, the only rows it will ever be compared with.
    settled = statistic[provisional.warmup_rows :] if len(train) > 2 * provisional.warmup_rows else statistic
    limit = float(np.quantile(settled, settings.limit_quantile))
    held = held_back_statistics(train, names, used, settings, provisional.warmup_rows)
    if len(held):
        limit = max(limit, float(np.quantile(held, settings.limit_quantile)))
    limit *= settings.margin
    if not limit > 0:
        raise DatasetError("training data gives a zero control limit: the features never vary")
    return replace(provisional, limit=limit)


def deadband(settings: FitSettings) -> float:
    """The share of the limit below which a raised alarm clears (``clear`` in :class:`FitSettings`)."""
    if settings.clear is not None:
        return settings.clear
    return 1.0 if settings.detector == "iforest" else 0.9


def _one_sensor_chart(used_features: int, settings: FitSettings) -> bool:
    """Whether the model is a Shewhart chart of one sensor (see ``one_sensor_sigma`` in :class:`FitSettings`)."""
    return (
        used_features == 1 and settings.one_sensor_sigma > 0 and settings.detector == "pca"
        and settings.pca_statistic in ("t2", "combined")
    )  # fmt: skip


def _unlimited(
    train: FloatArray,
    names: tuple[str, ...],
    detector: Detector,
    used: tuple[int, ...] | None,
    settings: FitSettings,
    training: TrainingInfo,
) -> AnomalyModel:
    """The model around a fitted detector before its limit is known (limit 1.0, drift centre from ``train``)."""
    columns = train[:, list(used)] if used is not None else train
    drift_rows = 0
    centre = scale = None
    if settings.drift and detector.history_rows == 0:
        drift_rows = settings.drift_rows or len(train)
        centre = columns.mean(axis=0)
        scale = feature_scale(columns)
    return AnomalyModel(
        detector, names, 1.0, settings.smoothing, settings.persistence, settings.limit_quantile,
        settings.margin, training, used, drift_rows, centre, scale, deadband(settings),
    )  # fmt: skip


def held_back_statistics(
    train: FloatArray, names: tuple[str, ...], used: tuple[int, ...] | None, settings: FitSettings, warmup: int
) -> FloatArray:
    """The smoothed statistic of training rows scored by a model that did not see them (``limit_folds`` blocks).

    The training rows are cut into ``limit_folds`` consecutive blocks; for each block a model is fitted on the
    other blocks and scores them, then the block (the drift centre running through both, as it will in use).
    What the block's rows score is what the plant does next to a period the model knows: on a short training
    period it holds the drift and the estimation error that the in-sample statistic hides (a detector always
    fits its own rows best). Blocks whose complement cannot be fitted (too few rows, no variation) are skipped;
    no block at all: an empty array, and the limit is in-sample only.
    """
    folds = settings.limit_folds
    block_rows = len(train) // folds if folds >= 2 else 0
    if block_rows <= 2 * warmup or block_rows < 2:
        return np.empty(0)
    edges = np.linspace(0, len(train), folds + 1).astype(np.int64)
    columns = list(used) if used is not None else list(range(train.shape[1]))
    pooled: list[FloatArray] = []
    for start, stop in itertools.pairwise(edges):
        rest = np.r_[train[:start], train[stop:]]
        try:
            detector = fit_detector(rest[:, columns], settings)
        except DatasetError:
            continue
        model = _unlimited(rest, names, detector, used, settings, TrainingInfo(len(rest)))
        statistic = Scorer(model)._score(np.r_[rest, train[start:stop]], np.inf).statistic
        pooled.append(statistic[len(rest) + warmup :])
    return np.concatenate(pooled) if pooled else np.empty(0)
