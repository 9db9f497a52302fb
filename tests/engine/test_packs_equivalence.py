"""Property: on the four shipped packs, the vectorised engine and the reference agree on random plant streams."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.engine.catalog import METRIC_INDEX
from sentinel.engine.devices import DeviceSpec
from sentinel.engine.engine import Engine
from sentinel.engine.loader import load_rules
from sentinel.engine.reference import ReferenceEngine
from tests.examples import examples

RULES = load_rules()
ATTRS = {
    "operating_pressure_mpa": 0.3, "pressure_class_max_mpa": 0.4, "dc_dp_baseline_pa": 1000.0,
    "dc_dp_allowed_pa": 1500.0, "wet_tank_design_level": 100.0, "wet_flow_design_m3h": 50.0,
    "cw_pressure_setpoint_mpa": 0.5, "cw_flow_setpoint_m3h": 100.0, "launder_level_high_mm": 200.0,
    "launder_level_low_mm": 50.0,
}  # fmt: skip
DEVICES = [
    DeviceSpec(f"{name}-{i}", name, f"site-{i}", RULES.classes[name].pack, 2.0, ATTRS)
    for name in RULES.classes
    for i in range(2)
]
# Values that cross the levels of the shipped packs somewhere (and plain ones).
VALUES = [0.0, 0.3, 0.38, 0.45, 0.5, 1.0, 2.0, 12.0, 22.0, 30.0, 55.0, 62.0, 72.0, 120.0, 300.0, 1000.0, 1400.0]
PAIRS = [(d, m) for d, spec in enumerate(DEVICES) for m in RULES.classes[spec.device_class].metrics]
T0 = 1_700_000_000_000_000
# Device-time steps between readings: mostly short, sometimes long enough for stuck and sustained levels.
STEPS = [0, 500_000, 1_000_000, 3_000_000, -1_000_000, 20_000_000, 900_000_000, 7_300_000_000]


@st.composite
def plant_streams(draw: st.DrawFn) -> tuple[list[tuple[int, int, int, float]], list[int], list[int]]:
    n = draw(st.integers(1, 120))
    pairs = draw(st.lists(st.sampled_from(PAIRS), min_size=n, max_size=n))
    steps = draw(st.lists(st.sampled_from(STEPS), min_size=n, max_size=n))
    fresh = draw(st.lists(st.sampled_from(VALUES), min_size=n, max_size=n))
    repeat = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    clock, rows = T0, []
    last: dict[tuple[int, str], float] = {}
    for (d, m), step, v, again in zip(pairs, steps, fresh, repeat, strict=True):
        clock += max(step, 0)
        value = last.get((d, m), v) if again else v
        last[(d, m)] = value
        rows.append((d, METRIC_INDEX[m], clock + min(step, 0), value))
    cuts = sorted(set(draw(st.lists(st.integers(0, n), max_size=5))))
    ticks = draw(st.lists(st.integers(0, 30_000_000), min_size=len(cuts) + 1, max_size=len(cuts) + 1))
    return rows, cuts, ticks


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=plant_streams())
def test_shipped_packs_match_reference(stream: tuple[list[tuple[int, int, int, float]], list[int], list[int]]) -> None:
    rows, cuts, ticks = stream
    fast, slow = Engine(RULES, DEVICES, lateness_s=5.0), ReferenceEngine(RULES, DEVICES, lateness_s=5.0)
    for (a, b), tick in zip(itertools.pairwise([0, *cuts, len(rows)]), ticks, strict=True):
        part = rows[a:b]
        cols = (
            np.array([r[0] for r in part], dtype=np.int32),
            np.array([r[1] for r in part], dtype=np.int16),
            np.array([r[2] for r in part], dtype=np.int64),
            np.array([r[3] for r in part], dtype=np.float64),
            np.arange(a, b, dtype=np.int64),
        )
        assert fast.process(*cols).records() == slow.process(*cols)
        now = max((r[2] for r in rows[:b]), default=T0) + tick
        assert fast.tick(now).records() == slow.tick(now)
