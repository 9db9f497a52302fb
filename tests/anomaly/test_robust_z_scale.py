"""The robust z-score's scale: stable under jitter far below the data's spread, even on a quantised metric.

A quantised sensor (most readings on one level) has a MAD of 0, and with a little jitter a MAD of the order of the
jitter; a scale that follows it turns a 1e-6 perturbation into z-scores and a limit a million times larger (SKAB's
valve1 Pressure: limit 1.5 -> 165,000, recall 0.80 -> 0.01). These tests state the invariant: perturbing every
reading by much less than the data's spread changes the scale, the fitted limit and the scores only slightly.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.engine.anomaly import FitSettings, fit_model
from sentinel.engine.anomaly.robust_z import fit_robust_z, robust_scale
from tests.examples import examples

NAMES = ("pressure", "current")
RELATIVE_JITTER = 1e-6


def quantised_rows(rows: int, mode_share: float, step: float, offset: float, seed: int) -> np.ndarray:
    """A quantised metric (``mode_share`` of the rows on one level, the rest a few steps off) beside a smooth one."""
    rng = np.random.default_rng(seed)
    levels = np.where(rng.random(rows) < mode_share, 0, rng.choice([-2, -1, 1, 2, 3], size=rows))
    quantised = offset + step * levels
    smooth = 10.0 + rng.normal(0.0, 0.3, rows)
    return np.column_stack([quantised, smooth])


def jittered(rows: np.ndarray, spread: np.ndarray, seed: int) -> np.ndarray:
    """``rows`` with every reading moved by at most RELATIVE_JITTER times its column's spread."""
    rng = np.random.default_rng(seed)
    moved: np.ndarray = rows + rng.uniform(-1.0, 1.0, rows.shape) * RELATIVE_JITTER * spread
    return moved


@settings(max_examples=examples(60), deadline=None)
@given(
    mode_share=st.floats(0.5, 0.9),
    step=st.floats(1e-3, 1e3),
    offset=st.floats(-1e3, 1e3),
    window=st.integers(1, 30),
    smoothing=st.integers(1, 10),
    quantile=st.sampled_from([0.95, 0.99, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_jitter_far_below_the_spread_barely_moves_scale_limit_and_scores(
    mode_share: float, step: float, offset: float, window: int, smoothing: int, quantile: float, seed: int
) -> None:
    train = quantised_rows(400, mode_share, step, offset, seed)
    series = np.concatenate([train, quantised_rows(300, mode_share, step, offset + step, seed + 1)])
    spread = train.std(axis=0)
    noisy = jittered(series, spread, seed + 2)
    fit = FitSettings(detector="robust_z", window=window, smoothing=smoothing, limit_quantile=quantile)
    clean_model = fit_model(series[:400], NAMES, fit)
    noisy_model = fit_model(noisy[:400], NAMES, fit)

    clean_scale = robust_scale(series[:400])
    np.testing.assert_allclose(robust_scale(noisy[:400]), clean_scale, rtol=1e-3)
    # The quantised column's scale reflects its levels, not the jitter on them.
    assert clean_scale[0] > 0.05 * spread[0]
    assert noisy_model.limit == pytest.approx(clean_model.limit, rel=1e-3)
    clean, perturbed = clean_model.score(series), noisy_model.score(noisy)
    # Scores are in units of the limit (1 = on it); a shift of a thousandth of that is far below any decision.
    np.testing.assert_allclose(perturbed.score, clean.score, rtol=1e-3, atol=1e-3)


def test_a_metric_with_zero_mad_keeps_a_scale_from_its_levels_under_jitter() -> None:
    # SKAB valve1 Pressure in miniature: 60 % of the rows on one level, so the MAD is exactly 0.
    train = quantised_rows(400, 0.6, 0.25, 0.1, seed=5)
    assert np.median(np.abs(train[:, 0] - np.median(train[:, 0]))) == 0.0
    deviation = np.abs(train[:, 0] - np.median(train[:, 0]))
    expected = deviation.mean() * np.sqrt(np.pi / 2)
    clean = fit_robust_z(train, window=10).scale[0]
    noisy = fit_robust_z(jittered(train, np.full(2, 1.0), seed=6), window=10).scale[0]
    assert clean == expected
    assert abs(noisy / clean - 1) < 1e-4
    assert clean > 0.1


def test_on_gaussian_data_the_scale_estimates_the_standard_deviation() -> None:
    rng = np.random.default_rng(7)
    train = rng.normal(0.0, [0.5, 2.0, 40.0], size=(5000, 3))
    np.testing.assert_allclose(robust_scale(train), [0.5, 2.0, 40.0], rtol=0.05)


def test_a_constant_metric_gets_a_scale_of_one() -> None:
    train = np.column_stack([np.full(50, 3.0), np.arange(50.0)])
    scale = robust_scale(train)
    assert scale[0] == 1.0
    assert scale[1] > 1.0
