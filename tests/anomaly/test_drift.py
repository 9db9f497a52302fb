"""Drift of normal operation: a model fitted on one normal period keeps its false-alarm rate on a later one, and
still catches a fault there; the limit's stated false-alarm rate holds on fresh normal data; slow features.

The SKAB tests read ../shared/data/skab (skip when absent): the anomaly-free recording for a long normal period,
and valve1's 16 files as the one five-hour session they are, for real faults hours after the training period.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.engine.anomaly import FitSettings, fit_model
from sentinel.engine.anomaly.features import slow_features
from sentinel.testing.datasets import shared_data
from tests.anomaly.synthetic import NAMES, drifting_rows, normal_rows

SKAB = shared_data(__file__) / "skab"
FREE = SKAB / "anomaly-free" / "anomaly-free.csv"
VALVE1 = SKAB / "valve1"
FAR_TARGET = 0.15


def test_model_follows_slow_drift_and_still_catches_a_step_fault() -> None:
    data = drifting_rows(6000, seed=3)
    spread = data[:500].std(axis=0)
    fault = slice(4000, 4300)
    data[fault, 1] += 6 * spread[1]  # flow steps up alone: a level change and a broken relation
    model = fit_model(data[:500], NAMES)
    alarm = model.score(data).alarm
    normal = np.ones(len(data), dtype=bool)
    normal[:500] = False
    normal[fault.start : fault.stop + 50] = False  # the smoothing window needs a few rows to come down
    assert alarm[normal].mean() <= FAR_TARGET
    assert alarm[fault.start + 20 : fault.stop].mean() >= 0.9
    # The same fit without drift following alarms on most of the later normal rows: the drift is real.
    fixed = fit_model(data[:500], NAMES, FitSettings(drift=False)).score(data).alarm
    assert fixed[normal].mean() > 0.5


def test_a_fault_longer_than_the_drift_memory_is_not_learnt_as_normal() -> None:
    data = normal_rows(4000, seed=5)
    data[1000:3000, 0] += 5 * data[:500, 0].std()  # 2,000 rows, four times the model's 500-row memory
    alarm = fit_model(data[:500], NAMES).score(data).alarm
    assert alarm[1020:3000].mean() >= 0.95
    assert alarm[3050:].mean() <= FAR_TARGET  # and once it is over, the alarm clears


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), features=st.integers(2, 6))
def test_calibrated_limit_keeps_its_false_alarm_rate_on_fresh_normal_rows(seed: int, features: int) -> None:
    """Rows drawn from the training rows' distribution alarm at about the stated 1 % (the 0.99 quantile)."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(features, features))
    centre = rng.normal(scale=100, size=features)
    train = centre + rng.normal(size=(2000, features)) @ mixing
    fresh = centre + rng.normal(size=(4000, features)) @ mixing
    names = tuple(f"m{i}" for i in range(features))
    model = fit_model(train, names)
    assert model.ignored == ()
    alarm = model.score(np.concatenate([train, fresh])).alarm[len(train) :]
    # 1 % stated; the smoothed statistic is autocorrelated (runs of alarms), so allow sampling spread.
    assert alarm.mean() <= 0.04


def test_slow_features_are_left_out_but_kept_in_the_rows() -> None:
    rng = np.random.default_rng(11)
    data = normal_rows(400, seed=11)
    data[:, 3] = 60 + np.cumsum(rng.normal(size=400)) * 0.05  # a thermal sensor: a random walk
    slow = slow_features(data, 0.99)
    assert slow.tolist() == [False, False, False, True]
    model = fit_model(data, NAMES)
    assert model.ignored == ("temperature",)
    assert model.score(data).score.shape == (400,)
    assert fit_model(data, NAMES, FitSettings(drop_slow=False)).ignored == ()
    # When every feature is slow, none is dropped: there would be nothing left to watch.
    walks = 50 + np.cumsum(rng.normal(size=(400, 2)), axis=0)
    assert fit_model(walks, ("a", "b")).ignored == ()


@pytest.mark.slow
@pytest.mark.skipif(not FREE.is_file(), reason=f"SKAB anomaly-free recording not found at {FREE}")
def test_skab_anomaly_free_later_period_stays_quiet() -> None:
    """Fit on the first quarter of SKAB's anomaly-free recording (2,351 rows, 39 minutes), score the 7,054 normal
    rows after it: under the target (0.8 % with the held-back limit, 10.4 % with the in-sample one)."""
    frame = pl.read_csv(FREE, separator=";")
    names = tuple(c for c in frame.columns if c != "datetime")
    values = frame.select(names).to_numpy().astype(np.float64)
    cut = len(values) // 4
    assert fit_model(values[:cut], names).score(values).alarm[cut:].mean() <= FAR_TARGET


@pytest.mark.slow
@pytest.mark.skipif(not VALVE1.is_dir(), reason=f"SKAB valve1 not found at {VALVE1}")
def test_skab_valve1_session_a_model_of_its_first_minutes_keeps_quiet_for_hours_and_catches_the_real_faults() -> None:
    """valve1's 16 files are one five-hour recording (each file starts a second after the one before ends, no
    pause over 76 s; checked below) with 16 real, labelled valve faults. A model fitted on the first 400 rows
    (under 7 minutes) scores all of it: the normal rows of the next five hours stay under the FAR target, and
    the faults are still caught. (SKAB's anomaly-free recording is not used for this: it was recorded a month
    earlier at another operating point, 160-180 of its training standard deviations away on three sensors, so
    any model fitted on it alarms on every valve1 row, normal or not.) Labels only count here; nothing is
    chosen with them."""
    files = sorted(VALVE1.glob("*.csv"), key=lambda p: int(p.stem))
    frames = [pl.read_csv(p, separator=";") for p in files]
    frame = pl.concat(frames)
    times = frame["datetime"].str.to_datetime().to_numpy()
    # One row a second, from 10:14 to 15:34 on one day; the longest pause is 76 s.
    assert np.diff(times).max() <= np.timedelta64(2, "m"), "valve1 files are not one continuous recording"
    names = tuple(c for c in frame.columns if c not in ("datetime", "anomaly", "changepoint"))
    values = frame.select(names).to_numpy().astype(np.float64)
    fault = frame["anomaly"].to_numpy() > 0.5
    alarm = fit_model(values[:400], names).score(values).alarm
    later = np.arange(len(values)) >= 400
    assert alarm[later & ~fault].mean() <= FAR_TARGET  # 14.9 % when written (11.0 % without the deadband)
    assert alarm[fault].mean() >= 0.7  # 79 % of the fault rows
    heads = np.flatnonzero(np.diff(fault.astype(np.int8)) == 1) + 1
    ends = np.flatnonzero(np.diff(fault.astype(np.int8)) == -1) + 1
    assert len(heads) == len(ends) == 16
    assert all(alarm[a:b].any() for a, b in zip(heads, ends, strict=True)), "a recorded fault went unseen"
    # Without drift following the same model alarms on most of the later normal rows: the drift is real.
    fixed = fit_model(values[:400], names, FitSettings(drift=False)).score(values).alarm
    assert fixed[later & ~fault].mean() > 0.5
