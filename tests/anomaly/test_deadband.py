"""The alarm's deadband: once raised, an anomaly alarm holds until the score falls below ``clear`` x the limit.

Scores are made exact with a one-sensor chart without drift following: a reading ``mean + 3 sd sqrt(s)`` scores
exactly ``s`` (T² of one feature is its squared z-score, the chart's limit is 3² in those units). Against a plain
per-row reference of the rule (raise after ``persistence`` rows over 1, hold while the score is at least ``clear``,
a missing reading breaks it), whole and cut into batches at random places.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.engine.anomaly import AnomalyModel, FitSettings, fit_model
from sentinel.engine.anomaly.model import Scorer, deadband
from tests.examples import examples

TRAIN = np.random.default_rng(0).normal(10.0, 2.0, size=(500, 1))


def chart(clear: float, persistence: int) -> AnomalyModel:
    return fit_model(TRAIN, ("x",), FitSettings(drift=False, clear=clear, persistence=persistence))


def readings(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    mean, sd = float(TRAIN.mean()), float(TRAIN.std(ddof=1))
    rows: npt.NDArray[np.float64] = (mean + 3 * sd * np.sqrt(scores))[:, None]
    return rows


def reference(scores: npt.NDArray[np.float64], clear: float, persistence: int) -> list[bool]:
    on, run, out = False, 0, []
    for s in scores:
        run = run + 1 if s > 1.0 else 0  # NaN is not over: it breaks the run
        on = run >= persistence or (on and bool(s >= clear))
        out.append(on)
    return out


CLEARS = (0.5, 0.9, 1.0)
# Scores on a boundary (the limit, a clear value) are left out: there float rounding decides, not the rule.
score_values = st.one_of(
    st.floats(0.0, 2.0).filter(lambda v: all(abs(v - b) > 1e-6 for b in CLEARS)),
    st.sampled_from([0.85, 0.9 - 1e-6, 0.9 + 1e-6, 0.95, 1.0 - 1e-6, 1.0 + 1e-6, 1.05, float("nan")]),
)


@settings(max_examples=examples(150), deadline=None)
@given(
    scores=st.lists(score_values, min_size=1, max_size=80),
    clear=st.sampled_from(CLEARS),
    persistence=st.integers(1, 3),
    cuts=st.lists(st.integers(0, 80), max_size=5),
)
def test_alarm_follows_the_deadband_rule_whole_and_in_batches(
    scores: list[float], clear: float, persistence: int, cuts: list[int]
) -> None:
    values = np.array(scores)
    model = chart(clear, persistence)
    rows = readings(values)
    got = model.score(rows)
    np.testing.assert_allclose(got.score, values, rtol=1e-9, atol=1e-12)  # the construction holds
    expected = np.array(reference(values, clear, persistence))
    np.testing.assert_array_equal(got.alarm, expected)
    scorer = Scorer(model)
    edges = sorted({0, len(rows), *(c for c in cuts if c < len(rows))})
    batched = np.concatenate([scorer.score_batch(rows[a:b]).alarm for a, b in itertools.pairwise(edges)])
    np.testing.assert_array_equal(batched, expected)


def starts(alarm: npt.NDArray[np.bool_]) -> int:
    return int(np.sum(np.diff(np.r_[0, alarm.astype(np.int8)]) == 1))


def test_a_score_hovering_at_the_limit_alarms_once_with_the_deadband_and_chatters_without() -> None:
    hovering = np.tile([1.04, 0.95, 1.03, 0.97], 50)
    rows = readings(np.r_[np.zeros(5), hovering, np.zeros(5)])
    with_band = chart(0.9, 1).score(rows).alarm
    without = chart(1.0, 1).score(rows).alarm
    assert starts(with_band) == 1
    assert with_band[5:205].all()
    assert not with_band[205:].any()
    assert starts(without) == 100


def test_default_deadband_is_the_packs_for_distances_and_none_for_the_isolation_forest() -> None:
    assert deadband(FitSettings()) == 0.9
    assert deadband(FitSettings(detector="robust_z")) == 0.9
    assert deadband(FitSettings(detector="iforest")) == 1.0
    assert deadband(FitSettings(detector="iforest", clear=0.8)) == 0.8
