"""End to end: slow faults are warned by the anomaly rules of the shipped packs before their threshold rules fire.

For each fault (filter clogging: collector dP drifting up; smouldering hopper: hopper temperature creeping up;
gas pipe pressure drifting down) the test generates two days of normal history for the device, trains the pack's
model on it the way ``sentinel anomaly train`` does (:func:`feature_rows` then :func:`fit_model`), then runs a
fresh stream (another seed) through the :class:`Engine` with the shipped packs in one-minute micro-batches:
twenty hours of normal operation (every demand peak, most of the daily temperature cycle), then the drift. It
checks that no warning comes during the normal hours, that the first anomaly transition (an early warning,
``alert_class == "warning"``) comes after the drift starts, and that it comes before the first threshold alarm of
the same device, which must also fire.

The streams are generated here (the scenario simulators in ``sentinel.sim`` were being written at the same time):
a daily ambient cycle drives the collector's inlet and hopper temperatures together, the dP has a pulse-cleaning
sawtooth, the pipe pressure sags at the morning, noon and evening demand peaks; all with sensor noise.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from sentinel.engine import DeviceSpec, Engine, load_rules
from sentinel.engine.anomaly import DetectorKind, FitSettings, fit_model, save_model
from sentinel.engine.anomaly.history import Readings, feature_rows
from sentinel.engine.catalog import METRIC_INDEX

DAY_S = 86_400
T0_S = 1_793_491_200  # 2026-11-01 00:00 UTC
NORMAL_S = 20 * 3600  # covers the three demand peaks and the whole temperature cycle but 4 h
COLLECTOR = DeviceSpec(
    "dc-1", "dust_collector", "plant-1", "dust", 10.0, {"dc_dp_baseline_pa": 1000.0, "dc_dp_allowed_pa": 1500.0}
)
PIPE = DeviceSpec(
    "gp-1", "gas_pipe_monitor", "town-1", "gas", 30.0, {"operating_pressure_mpa": 0.3, "pressure_class_max_mpa": 0.4}
)


def collector(t: np.ndarray, rng: np.random.Generator, clog_pa_min: float = 0.0, smoulder_c_min: float = 0.0,
              fault_at: float = math.inf) -> dict[str, np.ndarray]:  # fmt: skip
    """Dust collector readings at times ``t`` (s); drifts start at ``fault_at``."""
    ambient = 25 + 6 * np.sin(2 * np.pi * (t % DAY_S) / DAY_S)
    drift_min = np.maximum(t - fault_at, 0) / 60
    sawtooth = (t % 600) / 600
    return {
        "dc_dp_pa": 990 + 20 * sawtooth + rng.normal(0, 6, len(t)) + clog_pa_min * drift_min,
        "dc_inlet_temp_c": ambient + 15 + rng.normal(0, 0.8, len(t)),
        "hopper_temp_c": ambient + 10 + rng.normal(0, 0.6, len(t)) + smoulder_c_min * drift_min,
    }


def pipe(
    t: np.ndarray, rng: np.random.Generator, drift_pct_min: float = 0.0, fault_at: float = math.inf
) -> dict[str, np.ndarray]:
    """Gas pipe pressure at times ``t`` (s): sags at 7:00, 12:00 and 18:00; drifts down from ``fault_at``."""
    hour = (t % DAY_S) / 3600
    demand = sum(np.exp(-(((hour - peak) / 1.2) ** 2)) for peak in (7.0, 12.0, 18.0))
    drift = np.maximum(t - fault_at, 0) / 60 * drift_pct_min / 100
    return {"pipe_pressure_mpa": 0.3 * (1 - 0.03 * demand - drift) + rng.normal(0, 0.0015, len(t))}


def as_readings(t: np.ndarray, signals: dict[str, np.ndarray]) -> Readings:
    names = list(signals)
    ts = np.repeat((t * 1e6).astype(np.int64), len(names))
    values = np.column_stack([signals[n] for n in names]).ravel()
    return Readings(np.zeros(len(ts), dtype=np.int64), names * len(t), ts, values)


def train(models: Path, device: DeviceSpec, interval_s: float, seed: int) -> None:
    """Two days of normal history through the same row building and fit as ``sentinel anomaly train``."""
    rule = next(r for r in load_rules().rules if r.kind == "anomaly" and device.device_class in r.device_classes)
    t = T0_S - 2 * DAY_S + np.arange(0, 2 * DAY_S, interval_s)
    rng = np.random.default_rng(seed)
    signals = collector(t, rng) if device.device_class == "dust_collector" else pipe(t, rng)
    detector = cast(DetectorKind, rule.detector)
    # q 0.999: with 0.995 the gas model warned falsely at the deepest evening demand sag (seen in this test).
    settings = FitSettings(detector, smoothing=10, limit_quantile=0.999, window=10)
    model = fit_model(feature_rows(as_readings(t, signals), rule.features), rule.features, settings)
    save_model(model, models / (rule.model or ""))


def first_raises(engine: Engine, device: DeviceSpec, t: np.ndarray, signals: dict[str, np.ndarray]) -> dict[str, float]:
    """Run the stream in one-minute batches; the first raise time (s) of warnings and of alarms on the device."""
    names = list(signals)
    dev = np.zeros(len(t) * len(names), dtype=np.int32) + engine.device_index(device.id)
    met = np.tile(np.array([METRIC_INDEX[n] for n in names], dtype=np.int16), len(t))
    ts = np.repeat((t * 1e6).astype(np.int64), len(names))
    val = np.column_stack([signals[n] for n in names]).ravel()
    seq = np.arange(len(ts), dtype=np.int64)
    first: dict[str, float] = {}
    cuts = np.searchsorted(ts, np.arange(ts[0], ts[-1] + 60_000_000, 60_000_000))
    for a, b in itertools.pairwise(cuts):
        for tr in engine.process(dev[a:b], met[a:b], ts[a:b], val[a:b], seq[a:b]).records():
            if tr.subject == device.id and tr.move == "raise":
                # Rules of kind anomaly are the early warnings; every other rule on the device counts as a
                # threshold alarm here, whatever the alert lifecycle files it as.
                which = "warning" if tr.alert_class == "warning" else "alarm"
                first.setdefault(which, tr.ts_us / 1e6)
                first.setdefault(f"{which}:{tr.rule_id}", tr.ts_us / 1e6)
        if "alarm" in first:
            break
    return first


CASES = {
    "filter clogging": (COLLECTOR, 10.0, {"clog_pa_min": 2.0}),
    "smouldering hopper": (COLLECTOR, 10.0, {"smoulder_c_min": 0.1}),
    "gas pressure drift": (PIPE, 30.0, {"drift_pct_min": 0.03}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_slow_fault_is_warned_before_threshold_alarm(case: str, tmp_path: Path) -> None:
    device, interval_s, drift = CASES[case]
    train(tmp_path, device, interval_s, seed=1)
    engine = Engine(load_rules(), [COLLECTOR, PIPE], models_dir=tmp_path)
    anomaly_rule = "dust.collector_anomaly" if device is COLLECTOR else "gas.pipe_pressure_anomaly"
    errors = engine.model_errors
    assert anomaly_rule not in errors, errors[anomaly_rule]
    fault_at = T0_S + NORMAL_S
    t = T0_S + np.arange(0, NORMAL_S + 12 * 3600, interval_s)
    rng = np.random.default_rng(2)
    signals = (
        collector(t, rng, fault_at=fault_at, **drift)
        if device is COLLECTOR
        else pipe(t, rng, fault_at=fault_at, **drift)
    )
    first = first_raises(engine, device, t, signals)
    print(case, "minutes after the fault starts:", {k: round((v - fault_at) / 60, 1) for k, v in first.items()})
    assert "alarm" in first, f"{case}: the threshold rules never fired; the drift is too slow for this test"
    assert "warning" in first, (
        f"{case}: no early warning before the threshold alarm at {first['alarm'] - fault_at:.0f} s"
    )
    assert first["warning"] >= fault_at, f"{case}: false warning {fault_at - first['warning']:.0f} s before the fault"
    assert first["warning"] < first["alarm"]
    assert first[f"warning:{anomaly_rule}"] == first["warning"]
    assert not any(k.startswith("alarm:") and "anomaly" in k for k in first)
