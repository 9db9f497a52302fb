"""Drift-following scoring speed: fixed centre vs the numpy drift loop vs the compiled drift path, same run.

    python bench/anomaly_speed.py [--series-rows 200000] [--reference-rows 20000] [--sizes 1000]
                                  [--readings 400000] [--batch 100000] [--repeat 2] [--detectors pca]

Three ways of scoring the same data with a model of the same detector fitted on the same rows:

- ``fixed``: the model fitted with ``drift=False`` (the centre stays where training left it; what scoring cost
  before drift following);
- ``drift loop``: the drift-following model through :func:`sentinel.engine.anomaly.drift.recentred_loop`, the
  numpy recursion (one array step per row position across devices), i.e. the drift path before it was compiled;
- ``drift fast``: the same model through :func:`~sentinel.engine.anomaly.drift.recentred_statistics` as shipped
  (compiled for PCA, :mod:`sentinel.engine.anomaly.drift_kernel`; other detectors fall back to the loop).

``offline rows/s``: ``AnomalyModel.score`` on one long series (``--series-rows``; the loop only on
``--reference-rows`` of it, it is slow), after one warm-up call (numba compiles once and caches on disk).
``live scoring step``: the engine's scoring of one batch alone (no row building, no grading), for the dust
collectors of 1k series (18 devices, ~300 rows each per 100k-reading batch) and of 100k series (1,786 devices, ~3
rows each): steadier than the engine table on a shared machine, where the rule's whole time is a few dozen ms.
``engine rows/s``: the shipped packs with the dust collector's anomaly rule, on ``--sizes`` series, fed the
stream of ``bench/engine.py``; rows / time inside the anomaly rule's evaluation (row building, scoring, grading),
best of ``--repeat`` runs. Ratios are against ``fixed`` in the same run. The drift loop and the fast path are also
checked to give the same smoothed statistics (max relative difference printed).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine as engine_bench  # bench/engine.py: its stream and timing helpers
from sentinel.engine.anomaly import FitSettings, fit_model, live, model, save_model
from sentinel.engine.anomaly.drift import recentred_loop, recentred_statistics
from sentinel.engine.catalog import METRIC_INDEX
from sentinel.engine.engine import Engine
from sentinel.engine.loader import load_rules


@contextlib.contextmanager
def drift_path(function: Callable[..., Any]) -> Iterator[None]:
    """Score drift models through ``function`` (offline scorer and live engine) inside the block."""
    name = "recentred_statistics"  # the name both modules imported it under
    saved = [(module, getattr(module, name)) for module in (model, live)]
    for module, _ in saved:
        setattr(module, name, function)
    try:
        yield
    finally:
        for module, before in saved:
            setattr(module, name, before)


def offline_rate(fitted: Any, series: np.ndarray) -> tuple[float, np.ndarray]:
    fitted.score(series[:200])  # warm-up: first call compiles (or loads the cached kernel)
    began = time.perf_counter()
    smoothed = fitted.score(series).statistic
    return len(series) / (time.perf_counter() - began), smoothed


def engine_rate(rules: Any, specs: Any, batches: Any, repeat: int, fitted: Any, rows: int, file: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        save_model(fitted, Path(tmp) / file)
        engine_bench.best_time(rules, specs, batches[:1], 1, Path(tmp))  # warm-up
        _, inside = engine_bench.best_time(rules, specs, batches, repeat, Path(tmp))
    return rows / inside


def step_rate(fitted: Any, devices: int, per: int, rng: np.random.Generator, typical: np.ndarray) -> float:
    """Rows/s of the live scoring step alone (``AnomalyRules._score``: detector, drift, smoothing, warm-up) on
    one batch of ``per`` rows for each of ``devices`` devices, repeated on the same windows; best of 5 x 0.2 s."""
    inst = np.repeat(np.arange(devices), per).astype(np.int64)
    rows = typical * (1.0 + 0.01 * rng.standard_normal((len(inst), len(typical))))
    windows = live.Windows.empty(fitted, devices)

    def note(*_: Any) -> None:
        return None

    live.AnomalyRules._score(fitted, windows, rows, inst, note)  # warm-up
    best = float("inf")
    for _ in range(5):
        began, reps = time.perf_counter(), 0
        while time.perf_counter() - began < 0.2:
            live.AnomalyRules._score(fitted, windows, rows, inst, note)
            reps += 1
        best = min(best, (time.perf_counter() - began) / reps)
    return len(rows) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series-rows", type=int, default=200_000)
    parser.add_argument("--reference-rows", type=int, default=20_000)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000])
    parser.add_argument("--readings", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--detectors", nargs="+", default=["pca"], choices=["pca", "iforest"])
    args = parser.parse_args()

    rules = load_rules()
    rule = rules.rule("dust.collector_anomaly")
    rules.rules = [
        replace(r, detector=None) if r is rule else r for r in rules.rules if r.kind != "anomaly" or r is rule
    ]
    rng = np.random.default_rng(3)
    typical = np.array([engine_bench.NORMAL[m][0] for m in rule.features])
    train = typical * (1.0 + 0.01 * rng.standard_normal((5_000, len(typical))))
    # One long series: normal noise on a slow drift, with a few faults (gated rows) and wild readings (capped).
    n = args.series_rows
    series = typical * (1.0 + 0.01 * rng.standard_normal((n, len(typical))))
    series += typical * 0.002 * np.sin(np.arange(n) / 5_000.0)[:, None]
    for start in rng.integers(0, n - 300, max(1, n // 20_000)):
        series[start : start + 300] *= 1.08
    series[rng.random(n) < 0.001] *= 1.2

    print(f"offline: one series of {n:,} rows (drift loop on the first {args.reference_rows:,}); rule {rule.id}")
    print(f"{'detector':>9} {'path':>11} {'rows/s':>12} {'vs fixed':>9} {'max rel diff':>13}")
    models: dict[str, dict[str, Any]] = {}
    for kind in args.detectors:
        fixed = fit_model(train, rule.features, FitSettings(kind, drift=False))
        drift = fit_model(train, rule.features, FitSettings(kind))
        models[kind] = {"fixed": fixed, "drift": drift}
        fixed_ps, _ = offline_rate(fixed, series)
        with drift_path(recentred_loop):
            loop_ps, loop_s = offline_rate(drift, series[: args.reference_rows])
        with drift_path(recentred_statistics):
            fast_ps, fast_s = offline_rate(drift, series)
        cut = fast_s[: args.reference_rows]
        diff = float(np.max(np.abs(cut - loop_s) / np.maximum(np.abs(loop_s), 1e-300)))
        for label, rate, d in (("fixed", fixed_ps, ""), ("drift loop", loop_ps, ""), ("drift fast", fast_ps, diff)):
            shown = f"{d:>13.1e}" if d != "" else f"{'':>13}"
            print(f"{kind:>9} {label:>11} {rate:>12,.0f} {rate / fixed_ps:>9.3f} {shown}", flush=True)

    print("\nlive scoring step alone (AnomalyRules._score on one batch, no row building or grading), best of 5")
    print(f"{'detector':>9} {'devices x rows':>15} {'path':>11} {'rows/s':>12} {'vs fixed':>9}")
    for kind in args.detectors:
        for devices, per in ((18, 300), (1_786, 3)):  # the dust collectors of 1k and of 100k series, per batch
            fixed_ps = step_rate(models[kind]["fixed"], devices, per, rng, typical)
            with drift_path(recentred_loop):
                loop_ps = step_rate(models[kind]["drift"], devices, per, rng, typical)
            with drift_path(recentred_statistics):
                fast_ps = step_rate(models[kind]["drift"], devices, per, rng, typical)
            for label, rate in (("fixed", fixed_ps), ("drift loop", loop_ps), ("drift fast", fast_ps)):
                shape = f"{devices:,} x {per}"
                print(f"{kind:>9} {shape:>15} {label:>11} {rate:>12,.0f} {rate / fixed_ps:>9.3f}", flush=True)

    for size in args.sizes:
        specs = engine_bench.devices_for(size, {name: c.metrics for name, c in rules.classes.items()})
        engine = Engine(rules, specs)
        span = 2_000_000
        batches = [
            engine_bench.stream(engine, args.batch, rng, engine_bench.T0 + i * span, span)
            for i in range(max(1, args.readings // args.batch))
        ]
        features = [METRIC_INDEX[m] for m in rule.features]
        dust = engine.table.class_index["dust_collector"]
        rows = sum(int((np.isin(c[1], features) & (engine.table.device_class[c[0]] == dust)).sum()) for c in batches)
        devices = sum(1 for s in specs if s.device_class == "dust_collector")
        print(
            f"\nengine: {size:,} series ({devices:,} dust collectors), {len(batches)} batches of {args.batch:,}"
            f" readings, {rows:,} anomaly rows; best of {args.repeat}"
        )
        print(f"{'detector':>9} {'path':>11} {'rows/s':>12} {'vs fixed':>9}")
        for kind in args.detectors:
            fixed_ps = engine_rate(rules, specs, batches, args.repeat, models[kind]["fixed"], rows, rule.model or "")
            with drift_path(recentred_loop):
                loop_ps = engine_rate(rules, specs, batches, args.repeat, models[kind]["drift"], rows, rule.model or "")
            with drift_path(recentred_statistics):
                fast_ps = engine_rate(rules, specs, batches, args.repeat, models[kind]["drift"], rows, rule.model or "")
            for label, rate in (("fixed", fixed_ps), ("drift loop", loop_ps), ("drift fast", fast_ps)):
                print(f"{kind:>9} {label:>11} {rate:>12,.0f} {rate / fixed_ps:>9.3f}", flush=True)
    print(
        "fixed: drift=False model; drift loop: the numpy recursion (before compiling); drift fast: as shipped."
        " vs fixed: rate / fixed rate in this run. max rel diff: largest relative difference of the smoothed"
        " statistic between drift fast and drift loop on the rows both scored."
    )


if __name__ == "__main__":
    main()
