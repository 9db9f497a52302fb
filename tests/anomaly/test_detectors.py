"""Detector behaviour on synthetic data: faults are flagged, normal rows mostly are not."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import IsolationForest

from sentinel.engine.anomaly import FitSettings, fit_model
from sentinel.engine.anomaly.iforest import fit_isolation_forest
from sentinel.engine.anomaly.pca import PcaStatistic, fit_pca
from tests.anomaly.synthetic import NAMES, decorrelated_rows, normal_rows, shifted_rows

TRAIN = normal_rows(1000, seed=1)


def alarm_share(settings: FitSettings, rows: np.ndarray) -> float:
    model = fit_model(TRAIN, NAMES, settings)
    # Score after a stretch of normal rows, as in a live stream, and look at the fault segment only.
    scores = model.score(np.concatenate([normal_rows(200, seed=7), rows]))
    return float(scores.alarm[200:].mean())


@pytest.mark.parametrize(
    "settings",
    [
        FitSettings(detector="pca", pca_statistic="t2", smoothing=10, limit_quantile=0.99),
        FitSettings(detector="pca", pca_statistic="combined", smoothing=10, limit_quantile=0.99),
        FitSettings(detector="iforest", smoothing=10, limit_quantile=0.99, trees=50),
        FitSettings(detector="robust_z", window=10, smoothing=1, limit_quantile=0.99),
    ],
    ids=["pca-t2", "pca-combined", "iforest", "robust_z"],
)
def test_level_shift_is_flagged_and_normal_rows_mostly_not(settings: FitSettings) -> None:
    assert alarm_share(settings, shifted_rows(300, seed=3)) > 0.95
    assert alarm_share(settings, normal_rows(2000, seed=4)) < 0.05


@pytest.mark.parametrize("statistic", ["q", "combined"])
def test_broken_correlation_is_flagged_by_q(statistic: str) -> None:
    settings = FitSettings(detector="pca", pca_statistic=statistic, pca_variance=0.9, smoothing=10)  # type: ignore[arg-type]
    assert alarm_share(settings, decorrelated_rows(400, seed=5)) > 0.9
    assert alarm_share(settings, normal_rows(2000, seed=6)) < 0.05


def test_t2_alone_misses_most_of_a_broken_correlation() -> None:
    # Why Q exists: every metric stays in range, so distance inside the principal subspace barely changes.
    t2 = FitSettings(detector="pca", pca_statistic="t2", pca_variance=0.9, smoothing=10)
    q = FitSettings(detector="pca", pca_statistic="q", pca_variance=0.9, smoothing=10)
    broken = decorrelated_rows(400, seed=5)
    assert alarm_share(t2, broken) < alarm_share(q, broken)


def test_normalised_score_is_statistic_over_limit_and_alarm_needs_persistence() -> None:
    model = fit_model(TRAIN, NAMES, FitSettings(detector="pca", smoothing=1, persistence=5))
    far_off = 10 * TRAIN.std(axis=0)
    rows = np.concatenate([normal_rows(50, seed=8), normal_rows(3, seed=9) + far_off, normal_rows(50, seed=10)])
    scores = model.score(rows)
    np.testing.assert_allclose(scores.score, scores.statistic / model.limit)
    assert (scores.score[50:53] > 1).all()
    assert not scores.alarm.any(), "three rows over the limit must not satisfy a five-row persistence"
    longer = model.score(np.concatenate([normal_rows(50, seed=8), normal_rows(8, seed=9) + far_off]))
    assert longer.alarm[54:].all()
    assert not longer.alarm[:54].any()


def test_limit_is_the_training_quantile_of_the_smoothed_statistic_once_windows_are_full() -> None:
    settings = FitSettings(detector="pca", smoothing=5, limit_quantile=0.95, margin=1.5, limit_folds=0)
    model = fit_model(TRAIN, NAMES, settings)
    fresh = fit_model(TRAIN, NAMES, replace(settings, limit_quantile=1.0, margin=1.0))
    smoothed = fresh.score(TRAIN).statistic
    assert model.warmup_rows == 4
    assert model.limit == pytest.approx(1.5 * np.quantile(smoothed[4:], 0.95))


def test_held_back_limit_is_the_quantile_of_blocks_scored_by_models_of_the_other_blocks() -> None:
    # Without drift following, so that scoring with the fitted limit moves nothing the fit's limit-free run did not.
    settings = FitSettings(detector="pca", smoothing=5, limit_quantile=0.95, limit_folds=4, drift=False)
    model = fit_model(TRAIN, NAMES, settings)
    in_sample = fit_model(TRAIN, NAMES, replace(settings, limit_folds=0)).limit
    # By hand: block j scored after the other blocks by a model fitted on them alone.
    edges = np.linspace(0, len(TRAIN), 5).astype(int)
    held = []
    for start, stop in itertools.pairwise(edges):
        rest = np.r_[TRAIN[:start], TRAIN[stop:]]
        other = fit_model(rest, NAMES, replace(settings, limit_folds=0))
        statistic = other.score(np.r_[rest, TRAIN[start:stop]]).statistic
        held.append(statistic[len(rest) + model.warmup_rows :])
    expected = max(in_sample, float(np.quantile(np.concatenate(held), 0.95)))
    assert model.limit == pytest.approx(expected, rel=1e-9)
    assert model.limit >= in_sample


def test_held_back_limit_widens_for_a_short_drifting_training_period() -> None:
    """A training period that drifts: the in-sample limit is too narrow for what comes next, the held-back one
    sees the drift between blocks and keeps the later normal rows nearly quiet."""
    rng = np.random.default_rng(21)
    walk = np.cumsum(rng.normal(scale=0.08, size=(3000, 1)), axis=0)  # slow wander shared by two sensors
    rows = rng.normal(size=(3000, 3)) + np.c_[walk, 0.5 * walk, np.zeros((3000, 1))]
    names = ("a", "b", "c")
    held = fit_model(rows[:400], names)
    in_sample = fit_model(rows[:400], names, FitSettings(limit_folds=0))
    assert held.limit > in_sample.limit
    assert held.score(rows).alarm[400:].mean() < in_sample.score(rows).alarm[400:].mean()


def test_a_fresh_stream_does_not_alarm_before_its_windows_fill() -> None:
    model = fit_model(TRAIN, NAMES, FitSettings(detector="robust_z", window=9, smoothing=3))
    rows = normal_rows(30, seed=14) + 10 * TRAIN.std(axis=0)
    alarm = model.score(rows).alarm
    assert model.warmup_rows == 10
    assert not alarm[:10].any()
    assert alarm[10:].all()


def test_pca_keeps_the_fewest_components_for_the_variance_asked() -> None:
    # Two hidden factors explain nearly all variance: 0.9 needs at most 2 components, 0.9999 needs more.
    assert fit_pca(TRAIN, variance=0.9).components.shape[0] <= 2
    assert fit_pca(TRAIN, variance=0.9999).components.shape[0] > 2


def test_flattened_isolation_forest_scores_like_scikit_learn() -> None:
    detector = fit_isolation_forest(TRAIN, trees=30, max_samples=128, seed=4)
    forest = IsolationForest(n_estimators=30, max_samples=128, max_features=1.0, random_state=4).fit(TRAIN)
    rows = np.concatenate([normal_rows(100, seed=11), shifted_rows(100, seed=12)])
    np.testing.assert_allclose(detector.statistic(np.empty((0, 4)), rows), -forest.score_samples(rows))


def test_robust_z_ignores_isolated_spikes() -> None:
    model = fit_model(TRAIN, NAMES, FitSettings(detector="robust_z", window=9, smoothing=1, limit_quantile=1.0))
    rows = normal_rows(300, seed=13)
    rows[10::20, 0] += 50.0  # one spike every 20 rows: never the median of a full 9-row window
    spiky = model.score(rows)
    assert not spiky.alarm.any()
    assert spiky.score.max() < 2 * model.score(normal_rows(300, seed=13)).score.max()


def test_fit_refuses_non_finite_training_data_naming_the_place() -> None:
    from sentinel.errors import DatasetError

    bad = TRAIN.copy()
    bad[17, 2] = np.nan
    with pytest.raises(DatasetError, match=r"row 17, feature 'current'"):
        fit_model(bad, NAMES)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    rows=st.integers(20, 300),
    sigma=st.sampled_from([2.0, 3.0, 4.5]),
    statistic=st.sampled_from(["t2", "combined"]),
)
def test_one_sensor_alarms_exactly_beyond_mean_plus_minus_sigma_sd(
    seed: int, rows: int, sigma: float, statistic: PcaStatistic
) -> None:
    """One sensor, no drift: the alarm is the Shewhart chart |x - training mean| > sigma x training sd (ddof 1)
    on each reading, whatever the training values' shape (skewed, spiky, bounded); nothing smooths it."""
    rng = np.random.default_rng(seed)
    train = rng.lognormal(sigma=rng.uniform(0.1, 1.5), size=(rows, 1)) + np.sin(np.arange(rows) / 7)[:, None]
    mean, sd = train.mean(), train.std(ddof=1)
    chart = FitSettings(one_sensor_sigma=sigma, pca_statistic=statistic, drift=False, clear=1.0)  # no deadband
    model = fit_model(train, ("x",), chart)
    assert model.smoothing == 1
    assert model.warmup_rows == 0
    z = rng.uniform(-2 * sigma, 2 * sigma, size=500)
    z = z[np.abs(np.abs(z) - sigma) > 1e-6]  # not on the limit itself (float rounding decides there)
    alarm = model.score(mean + z[:, None] * sd).alarm
    np.testing.assert_array_equal(alarm, np.abs(z) > sigma)


def test_one_sensor_sigma_zero_limits_one_sensor_like_several_and_several_are_unchanged() -> None:
    rng = np.random.default_rng(5)
    one = rng.normal(size=(400, 1))
    chart = fit_model(one, ("x",))
    quantile = fit_model(one, ("x",), FitSettings(one_sensor_sigma=0))
    assert (chart.smoothing, quantile.smoothing) == (1, FitSettings().smoothing)
    assert chart.limit == pytest.approx(9.0 / chart.detector.t2_reference)  # type: ignore[attr-defined]
    # The held-back quantile limit of the 10-row mean, as for several sensors.
    settled = fit_model(one, ("x",), FitSettings(one_sensor_sigma=0, limit_folds=0)).limit
    assert quantile.limit >= settled
    several = fit_model(TRAIN, NAMES)
    assert several.limit == fit_model(TRAIN, NAMES, FitSettings(one_sensor_sigma=0)).limit
    assert several.smoothing == FitSettings().smoothing
    with pytest.raises(ValueError, match="one_sensor_sigma"):
        FitSettings(one_sensor_sigma=-1.0)
