"""A quantised sensor (readings in whole steps of its resolution) that hardly moved in training.

SKAB's pressure reads in steps of 0.328 bar and sits on one level for minutes; a count or a one-decimal percentage
does the same. In a short training period such a sensor flips to the next step a few times: its standard deviation
is a small fraction of one step, and every later flip, as ordinary as those in training, is many standard deviations.
Each feature's scale is floored at half its resolution (:func:`~sentinel.engine.anomaly.detector.feature_scale`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.engine.anomaly import fit_model
from sentinel.engine.anomaly.features import feature_scale
from tests.anomaly.synthetic import NAMES, normal_rows
from tests.examples import examples

STEP = 0.328


def _flips(rows: int, seed: int, every: int) -> npt.NDArray[np.float64]:
    """Readings on one level of a STEP grid, one step off at every ``every``-th row (from row ``every // 2``),
    up and down in turn."""
    column = np.full(rows, 5 * STEP)
    column[every // 2 :: every] += STEP * np.resize([1.0, -1.0], len(column[every // 2 :: every]))
    return column + np.random.default_rng(seed).normal(scale=1e-12, size=rows)  # float noise of a decoder


def test_one_quantised_sensor_flipping_as_in_training_does_not_alarm() -> None:
    """A Shewhart chart of one quantised sensor: two one-step flips in 400 training rows, then the same rate."""
    values = _flips(4000, seed=1, every=200)[:, None]
    alarm = fit_model(values[:400], ("pressure",)).score(values).alarm[400:]
    assert alarm.sum() == 0  # before the floor: every one of the 18 later flips alarmed


def test_one_quantised_sensor_still_alarms_on_a_move_of_two_steps() -> None:
    values = _flips(2000, seed=2, every=200)[:, None]
    values[1000:1100, 0] += 2 * STEP
    alarm = fit_model(values[:400], ("pressure",)).score(values).alarm
    assert alarm[1000:1100].all()
    assert alarm[1100:].sum() == 0


def test_with_a_quantised_sensor_in_the_model_a_fault_of_another_sensor_is_caught() -> None:
    data = normal_rows(3000, seed=4)
    data[:, 0] = _flips(3000, seed=4, every=100)
    spread = data[:400].std(axis=0)
    data[2000:2300, 1] += 2.5 * spread[1]  # flow alone: a real fault in another sensor
    alarm = fit_model(data[:400], NAMES).score(data).alarm
    assert alarm[2020:2300].mean() >= 0.9
    assert alarm[400:2000].mean() <= 0.05


@settings(max_examples=examples(60), deadline=None)
@given(
    step=st.sampled_from([1e-3, 0.01, 0.328, 2.0, 25.0]),
    levels=st.lists(st.integers(-50, 50), min_size=2, max_size=400),
)
def test_scale_of_a_quantised_sensor_is_at_least_half_its_step_and_its_spread(step: float, levels: list[int]) -> None:
    column = np.asarray(levels, dtype=np.float64)[:, None] * step
    scale = feature_scale(column)
    distinct = np.unique(column)
    if len(distinct) == 1:
        assert scale[0] == 1.0  # a sensor that never moved: unit scale, as before
        return
    assert scale[0] >= column.std(ddof=1) * (1 - 1e-12)
    if len(distinct) >= 3:  # a grid shows: every gap is a whole number of the smallest
        assert scale[0] >= np.diff(distinct).min() / 2 * (1 - 1e-9)
    else:  # two levels are no grid (a spike or an on/off signal): its spread, no floor
        assert scale[0] == column.std(ddof=1)


def test_two_levels_are_no_grid_a_spike_signal_keeps_its_spread() -> None:
    spikes = np.zeros((600, 1))
    spikes[::50] = 20.0
    assert feature_scale(spikes)[0] == spikes.std(ddof=1)
    irregular = np.array([[0.0], [1.0], [2.5], [0.0], [1.0]])  # gaps 1 and 1.5: not whole steps
    assert feature_scale(irregular)[0] == irregular.std(ddof=1)


def test_continuous_sensors_keep_their_standard_deviation() -> None:
    data = normal_rows(400, seed=9)
    assert np.allclose(feature_scale(data), data.std(axis=0, ddof=1))
