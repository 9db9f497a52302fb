"""Window helpers against plain definitions, and batch-by-batch scoring against scoring in one piece."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.engine.anomaly import AnomalyModel, FitSettings, Scorer, fit_model
from sentinel.engine.anomaly.windows import run_lengths, trailing_mean, trailing_median
from tests.anomaly.synthetic import NAMES, normal_rows
from tests.examples import examples

TRAIN = normal_rows(600, seed=21)
SERIES = np.concatenate([normal_rows(150, seed=22), normal_rows(60, seed=23) + 3.0, normal_rows(90, seed=24)])
MODELS: dict[str, AnomalyModel] = {
    kind: fit_model(TRAIN, NAMES, settings)
    for kind, settings in {
        "pca": FitSettings(detector="pca", pca_statistic="combined", smoothing=7, persistence=3, limit_quantile=1.0),
        "iforest": FitSettings(detector="iforest", trees=20, smoothing=4, persistence=2, limit_quantile=1.0),
        "robust_z": FitSettings(detector="robust_z", window=11, smoothing=3, persistence=4, limit_quantile=1.0),
    }.items()
}

values = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=0, max_size=60)


@given(history=values, batch=values, window=st.integers(1, 12))
def test_trailing_mean_is_the_mean_of_the_available_window(
    history: list[float], batch: list[float], window: int
) -> None:
    joined = history + batch
    expected = [np.mean(joined[max(0, i - window + 1) : i + 1]) for i in range(len(history), len(joined))]
    got = trailing_mean(np.array(history), np.array(batch), window)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-6)


@given(history=values, batch=values.filter(bool), window=st.integers(1, 12))
def test_trailing_median_is_the_median_of_the_available_window(
    history: list[float], batch: list[float], window: int
) -> None:
    joined = np.array(history + batch).reshape(-1, 1)
    expected = [np.median(joined[max(0, i - window + 1) : i + 1, 0]) for i in range(len(history), len(joined))]
    got = trailing_median(joined[: len(history)], joined[len(history) :], window)[:, 0]
    np.testing.assert_allclose(got, expected)


@given(flags=st.lists(st.booleans(), max_size=80), carried=st.integers(0, 50))
def test_run_lengths_count_consecutive_true(flags: list[bool], carried: int) -> None:
    expected, run = [], carried
    for flag in flags:
        run = run + 1 if flag else 0
        expected.append(run)
    assert run_lengths(np.array(flags, dtype=bool), carried).tolist() == expected


@settings(max_examples=examples(40), deadline=None)
@given(kind=st.sampled_from(sorted(MODELS)), cuts=st.lists(st.integers(0, len(SERIES)), max_size=8))
def test_scoring_in_batches_equals_scoring_at_once(kind: str, cuts: list[int]) -> None:
    model = MODELS[kind]
    whole = model.score(SERIES)
    scorer = Scorer(model)
    bounds = [0, *sorted(cuts), len(SERIES)]
    parts = [scorer.score_batch(SERIES[a:b]) for a, b in itertools.pairwise(bounds)]
    np.testing.assert_allclose(np.concatenate([p.statistic for p in parts]), whole.statistic, rtol=1e-12)
    np.testing.assert_array_equal(np.concatenate([p.alarm for p in parts]), whole.alarm)
    assert whole.alarm[150:210].mean() > 0.5
    assert not whole.alarm[:150].any()


def test_trailing_median_skips_a_missing_reading() -> None:
    rows = np.array([[1.0], [np.nan], [3.0], [5.0]])
    got = trailing_median(np.empty((0, 1)), rows, 3)[:, 0]
    np.testing.assert_allclose(got, [1.0, 1.0, 2.0, 4.0])
