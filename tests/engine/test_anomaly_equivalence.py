"""Property: anomaly rules scored in the vectorised pass (all devices of a class at once) give the reference
evaluator's transitions (one reading at a time, the detector called per row), for every detector kind, over
random streams with disorder, late readings, NaN and arbitrary batch boundaries, next to the other rule kinds."""

from __future__ import annotations

import itertools
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.engine.engine import Engine
from sentinel.engine.reference import ReferenceEngine
from sentinel.engine.transitions import Transition
from tests.engine.packs import ANOMALY_KINDS, kind_rules, probes, write_probe_models
from tests.engine.test_equivalence import LATENESS_S, Stream, streams
from tests.examples import examples

MODELS = Path(tempfile.mkdtemp(prefix="sentinel-anomaly-models-"))
write_probe_models(MODELS)


def same(got: list[Transition], want: list[Transition]) -> bool:
    """Equal transitions; scores may differ in the last bits (batched matrix products sum in another order)."""
    if len(got) != len(want):
        return False
    for a, b in zip(got, want, strict=True):
        if a.__dict__ | {"value": 0.0} != b.__dict__ | {"value": 0.0}:
            return False
        if not (math.isclose(a.value, b.value, rel_tol=1e-9) or (math.isnan(a.value) and math.isnan(b.value))):
            return False
    return True


def run_both(stream: Stream, only: tuple[str, ...], restore_at: int | None = None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        rules = kind_rules(Path(tmp), only)
    devices = probes(stream.n_devices)
    fast = Engine(rules, devices, lateness_s=LATENESS_S, models_dir=MODELS)
    slow = ReferenceEngine(rules, devices, lateness_s=LATENESS_S, models_dir=MODELS)
    assert fast.model_errors == {}
    bounds = [0, *stream.cuts, len(stream.device)]
    warnings = 0
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        cols = (stream.device[a:b], stream.metric[a:b], stream.ts[a:b], stream.value[a:b], stream.seq[a:b])
        got, want = fast.process(*cols).records(), slow.process(*cols)
        assert same(got, want), f"batch {i} [{a}:{b}]\n{got}\n!=\n{want}"
        warnings += sum(t.alert_class == "warning" for t in got)
        if restore_at == i:  # a restarted engine rebuilt from the snapshot carries on with the same windows
            blob = fast.snapshot()
            fast = Engine(rules, devices, lateness_s=LATENESS_S, models_dir=MODELS)
            fast.restore(blob)
            slow.forget()  # the rewind log is not in the snapshot: both stop rewinding past here
    return warnings


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams())
def test_each_detector_matches_reference(kind: str, stream: Stream) -> None:
    run_both(stream, (kind,))


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams(), restore_at=st.one_of(st.none(), st.integers(0, 3)))
def test_anomaly_with_threshold_rules_matches_reference(stream: Stream, restore_at: int | None) -> None:
    run_both(stream, (*ANOMALY_KINDS, "t.threshold", "t.sustained", "t.stale", "t.composite"), restore_at)


def test_streams_do_raise_anomaly_warnings() -> None:
    """Guard against a vacuous property: the random streams must actually move anomaly grades."""
    from hypothesis import find

    example = find(
        streams(), lambda s: run_both(s, ANOMALY_KINDS) > 0, settings=settings(max_examples=500, deadline=None)
    )
    assert run_both(example, ANOMALY_KINDS) > 0
