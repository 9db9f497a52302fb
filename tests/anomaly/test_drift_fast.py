"""The drift recursion's fast paths (compiled for PCA, numpy across devices for others) against a plain per-row loop.

The reference below is the recursion of :mod:`sentinel.engine.anomaly.drift` written the obvious way: one device
after another, one row after another, the detector called on one row. Random batches of several devices, with
spikes that the cap clips, steps that push the smoothed statistic over the limit (rows then learnt nothing) and
rows with a missing value (NaN: they move nothing, and their statistic stays out of later windows), starting from
random carried state, must give the same statistics and the same state after the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sentinel.engine.anomaly.detector import Detector, FloatArray
from sentinel.engine.anomaly.drift import CLIP, recentred_loop, recentred_statistics
from sentinel.engine.anomaly.iforest import fit_isolation_forest
from sentinel.engine.anomaly.pca import fit_pca
from tests.examples import examples


@dataclass
class Case:
    detector: Detector
    rows: FloatArray
    group: np.ndarray
    offset: FloatArray
    past: FloatArray
    limit: float
    drift_rows: int
    centre: FloatArray
    scale: FloatArray


def per_row_reference(c: Case) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, int, int]:
    """Raw, smoothed, offset and past after the batch, and how many rows were gated and how many capped."""
    offset, past = c.offset.copy(), c.past.copy()
    raw, smoothed = np.empty(len(c.rows)), np.empty(len(c.rows))
    gain = 1.0 / c.drift_rows
    gated = capped = 0
    for i, row in enumerate(c.rows):
        g = c.group[i]
        offset[g, 0] += offset[g, 1]
        shifted = row - offset[g, 0]
        value = float(c.detector.statistic(c.rows[:0], shifted[None, :])[0])
        window = [v for v in past[g] if np.isfinite(v)]
        mean = (sum(window) + value) / (len(window) + 1)
        raw[i], smoothed[i] = value, mean
        if past.shape[1]:
            past[g] = np.r_[past[g, 1:], value]
        if mean <= c.limit and np.all(np.isfinite(shifted)):  # a row with a missing value moves nothing
            pull = (shifted - c.centre) / c.scale
            capped += int(np.any(np.abs(pull) > CLIP))
            step = np.clip(pull, -CLIP, CLIP) * c.scale
            offset[g, 0] += gain * (2.0 - gain) * step
            offset[g, 1] += gain * gain * step
        else:
            gated += 1
    return raw, smoothed, offset, past, gated, capped


@st.composite
def cases(draw: st.DrawFn) -> Case:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    f = draw(st.integers(2, 5))
    kind = draw(st.sampled_from(["t2", "q", "combined", "iforest"]))
    train = rng.standard_normal((200, f)) @ (np.eye(f) + 0.5 * rng.standard_normal((f, f)))
    detector: Detector = (
        fit_isolation_forest(train, 10, 64, 0) if kind == "iforest" else fit_pca(train, 0.8, kind)  # type: ignore[arg-type]
    )
    lengths = draw(st.lists(st.integers(1, 60), min_size=1, max_size=6))
    states = len(lengths) + draw(st.integers(0, 3))
    ids = rng.permutation(states)[: len(lengths)]  # each group's state row, in no particular order
    group = np.repeat(ids, lengths).astype(np.int64)
    n = len(group)
    rows = train.mean(axis=0) + rng.standard_normal((n, f)) * train.std(axis=0)
    rows += np.cumsum(rng.standard_normal((n, f)), axis=0) * 0.05  # slow drift
    spikes = rng.random(n) < draw(st.floats(0.0, 0.2))
    rows[spikes] += rng.choice([-1.0, 1.0], (int(spikes.sum()), f)) * 8.0 * train.std(axis=0)  # capped pulls
    if draw(st.booleans()):
        start = int(rng.integers(0, n))
        rows[start : start + int(rng.integers(1, 30))] += 4.0 * train.std(axis=0)  # a fault: gated rows
    if draw(st.booleans()):  # readings missing (NaN) in some rows, as the Scorer API may be given
        holes = rng.random(n) < 0.1
        rows[holes, int(rng.integers(0, f))] = np.nan
    span = draw(st.integers(0, 6))
    past = rng.gamma(2.0, 1.0, (states, span))
    past[:, : int(rng.integers(0, span + 1))] = np.nan  # windows not yet full (oldest entries missing)
    offset = rng.standard_normal((states, 2, f)) * np.array([0.3, 0.01])[None, :, None]
    limit = draw(st.floats(0.3, 6.0)) if kind != "iforest" else draw(st.floats(0.3, 0.7))
    return Case(
        detector, rows, group, offset, past, limit, draw(st.integers(1, 80)),
        train.mean(axis=0), train.std(axis=0, ddof=1),
    )  # fmt: skip


def check(c: Case) -> tuple[int, int]:
    raw, smoothed, offset, past, gated, capped = per_row_reference(c)
    for fast in (recentred_statistics, recentred_loop):
        o, p = c.offset.copy(), c.past.copy()
        r, s = fast(
            c.detector, c.rows, c.group, o, p,
            limit=c.limit, drift_rows=c.drift_rows, centre=c.centre, scale=c.scale,
        )  # fmt: skip
        assert np.all(np.isfinite(o)), "a row with a missing value made the drift state NaN"
        np.testing.assert_allclose(r, raw, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(s, smoothed, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(o, offset, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(p, past, rtol=1e-9, atol=1e-12)
    return gated, capped


@settings(max_examples=examples(150), deadline=None)
@given(case=cases())
def test_fast_paths_equal_the_per_row_recursion(case: Case) -> None:
    gated, capped = check(case)
    event("gated rows" if gated else "no gated rows")
    event("capped rows" if capped else "no capped rows")


def test_the_cases_hold_gated_and_capped_rows_for_both_paths() -> None:
    """The property above is not vacuous: its kind of data does gate and cap (here for sure, by construction)."""
    rng = np.random.default_rng(5)
    train = rng.standard_normal((300, 3))
    detector = fit_pca(train, 0.8, "combined")
    rows = rng.standard_normal((400, 3))
    rows[50:80] += 6.0  # a fault: over the limit
    rows[200] += 20.0  # one wild reading inside a normal stretch: its pull is capped
    rows[201:] += np.linspace(0.0, 2.0, 199)[:, None]  # slow drift, followed
    group = np.repeat(np.array([1, 0]), [150, 250]).astype(np.int64)
    case = Case(
        detector, rows, group, np.zeros((2, 2, 3)), np.full((2, 4), np.nan), 2.5, 40,
        train.mean(axis=0), train.std(axis=0, ddof=1),
    )  # fmt: skip
    gated, capped = check(case)
    assert gated >= 20
    assert capped >= 1


def test_a_row_with_a_missing_value_leaves_the_drift_state_finite_through_the_scorer() -> None:
    """Through the public Scorer API: one NaN reading must not turn the model's drift offset into NaN for good
    (every later row would then score NaN and never alarm again)."""
    from sentinel.engine.anomaly import fit_model
    from sentinel.engine.anomaly.model import Scorer

    rng = np.random.default_rng(3)
    train = rng.standard_normal((400, 3))
    model = fit_model(train, ("a", "b", "c"))
    assert model.drift_rows
    rows = rng.standard_normal((300, 3))
    rows[100, 1] = np.nan
    rows[200:260] += 6.0  # a fault after the missing reading: it must still be caught
    scorer = Scorer(model)
    scores = scorer.score_batch(rows)
    assert np.isnan(scores.statistic[100])
    assert np.all(np.isfinite(scores.statistic[110:]))
    assert scores.alarm[215:260].all()
    later = scorer.score_batch(rng.standard_normal((50, 3)))
    assert np.all(np.isfinite(later.statistic))
