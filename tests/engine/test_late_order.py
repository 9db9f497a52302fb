"""Property: late readings within the lateness bound are evaluated in device-time order, across micro-batches.

The oracle is the same engine given every reading at once, sorted by device time. The engine under test gets
the readings in a shuffled arrival order (each one delayed by up to ``DISORDER_S``, well inside the bound), cut
into random micro-batches. After the last batch, for every rule and device:

* the grade in effect (and the last grade the engine emitted) equals the in-order grade, and
* every transition of the in-order evaluation was emitted (same rule, subject, reading, grades and device time).

Site-scope rules are left out: DESIGN.md promises order per device, and readings of different devices of a site
arriving in different batches are combined in arrival order. Staleness is left out (it is judged by ticks).
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.engine.catalog import METRIC_INDEX
from sentinel.engine.engine import Engine
from sentinel.engine.transitions import Transition
from tests.engine.packs import KINDS, kind_rules, probes
from tests.examples import examples

METRICS = ["port_temp_c", "port_power_w", "spark_count", "smoke", "port_output_off", "charge_minutes"]
VALUES = [0.0, 0.4, 1.0, 2.0, 3.0, 45.0, 50.0, 55.0, 60.0, 62.0, 66.0, 70.0, 75.0, 90.0, 100.0, 120.0]
T0 = 1_700_000_000_000_000
LATENESS_S = 30.0
DISORDER_S = 8.0
PER_DEVICE = tuple(k for k in KINDS if k not in ("t.site", "t.stale"))


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[int, list[np.ndarray], list[int]]:
    """Readings with distinct device times per device, their arrival order and batch cuts."""
    n_devices = draw(st.integers(1, 3))
    n = draw(st.integers(1, 80))
    device = draw(st.lists(st.integers(0, n_devices - 1), min_size=n, max_size=n))
    metric = draw(st.lists(st.sampled_from(METRICS), min_size=n, max_size=n))
    sticky = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    fresh = draw(st.lists(st.sampled_from(VALUES), min_size=n, max_size=n))
    steps = draw(st.lists(st.integers(1, 1_500_000), min_size=n, max_size=n))
    delays = draw(st.lists(st.integers(0, round(DISORDER_S * 1e6)), min_size=n, max_size=n))
    last: dict[tuple[int, str], float] = {}
    value = []
    for d, m, again, v in zip(device, metric, sticky, fresh, strict=True):
        value.append(last.get((d, m), v) if again else v)
        last[(d, m)] = value[-1]
    ts = T0 + np.cumsum(np.array(steps, dtype=np.int64))  # strictly increasing: no ties to order by arrival
    arrival = np.argsort(ts + np.array(delays, dtype=np.int64), kind="stable")
    cols: list[np.ndarray] = [
        np.array(device, dtype=np.int32),
        np.array([METRIC_INDEX[m] for m in metric], dtype=np.int16),
        ts,
        np.array(value, dtype=np.float64),
        np.arange(n, dtype=np.int64),
    ]
    cuts = sorted(set(draw(st.lists(st.integers(0, n), max_size=8))))
    return n_devices, [c[arrival] for c in cols], cuts


def key(t: Transition) -> tuple[object, ...]:
    return (t.rule_id, t.subject, t.device_id, t.from_grade, t.to_grade, t.ts_us, t.seq)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=arrivals())
def test_late_readings_across_batches_are_evaluated_in_device_time_order(
    case: tuple[int, list[np.ndarray], list[int]],
) -> None:
    n_devices, cols, cuts = case
    with tempfile.TemporaryDirectory() as tmp:
        rules = kind_rules(Path(tmp), PER_DEVICE)
    devices = probes(n_devices)
    order = np.argsort(cols[2], kind="stable")
    oracle = Engine(rules, devices, lateness_s=LATENESS_S)
    in_order = oracle.process(*(c[order] for c in cols)).records()

    engine = Engine(rules, devices, lateness_s=LATENESS_S)
    emitted: list[Transition] = []
    bounds = [0, *cuts, len(cols[0])]
    for a, b in itertools.pairwise(bounds):
        emitted += engine.process(*(c[a:b] for c in cols)).records()

    assert engine.stats["too_late"] == 0
    sent = {key(t) for t in emitted}
    missing = [t for t in in_order if key(t) not in sent]
    assert not missing, f"in-order transitions never emitted: {missing}"
    last_sent: dict[tuple[str, str], str] = {}
    for t in emitted:
        last_sent[(t.rule_id, t.subject)] = t.to_grade
    for rule in rules.rules:
        for d, spec in enumerate(devices):
            inst = engine.table.population(rule.device_classes)[d]
            want = int(oracle.states[rule.id].active[inst])
            assert int(engine.states[rule.id].active[inst]) == want, (rule.id, spec.id)
            assert last_sent.get((rule.id, spec.id), "none") == ("none", "blue", "yellow", "orange", "red")[want]
