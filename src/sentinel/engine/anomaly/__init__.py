"""Anomaly detectors for early warning: fitted on normal data, scoring numpy batches with array operations.

Public interface::

    fit_model(train, feature_names, FitSettings(...), first=..., last=..., source=...) -> AnomalyModel
    AnomalyModel.score(rows) -> Scores                 # offline: one batch from a fresh start
    Scorer(model).score_batch(rows) -> Scores          # one series in consecutive micro-batches
    save_model(model, path) / load_model(path)         # .npz + JSON, no pickle; bad files raise ModelError
    history.feature_rows(Readings(...), features)      # rows as the live engine builds them from readings
    history.train_from_history(conn, cls, features, since, until, settings)   # `sentinel anomaly train`
    live.AnomalyRules(rules, models_dir)               # used by Engine: rule kind `anomaly`, reload on change

The engine does not run one Scorer per device: :mod:`.live` computes the same (detector statistic, trailing
mean, limit, warm-up) for every device of a class in one array pass; its property test checks it against per-row
detector calls. ``Scores.score`` is statistic / limit (above 1.0 = past the limit), ``Scores.alarm`` the 0/1 alarm.
A model that follows drift (the default for PCA and isolation forest) keeps a drift state per device; offline
and live both advance it with :func:`.drift.recentred_statistics`.
"""

from sentinel.engine.anomaly.model import (
    DETECTOR_KINDS,
    AnomalyModel,
    DetectorKind,
    FitSettings,
    Scorer,
    Scores,
    TrainingInfo,
    fit_model,
)
from sentinel.engine.anomaly.model_file import FORMAT_VERSION, load_model, save_model

__all__ = [
    "DETECTOR_KINDS",
    "FORMAT_VERSION",
    "AnomalyModel",
    "DetectorKind",
    "FitSettings",
    "Scorer",
    "Scores",
    "TrainingInfo",
    "fit_model",
    "load_model",
    "save_model",
]
