"""SKAB valve1 benchmark of the anomaly detectors; settings are tuned on some files and scored on others.

Protocol (../shared/data/skab/README): per file, the first 400 rows train a fresh model (rows with no labelled
anomaly), the rest are scored; TP/FP/FN/TN are counted point by point and summed over files;
F1 = TP / (TP + (FP + FN) / 2), FAR = FP / (FP + TN), MAR = FN / (FN + TP). The ``anomaly``/``changepoint`` labels
are read only to count; no model ever sees them or a test row while fitting (the training rows do serve as the
history in front of the first test row, as they would in a live stream).

Each detector has a small grid of settings (feature set, statistic, smoothing, limit quantile, ...). The setting
used on a file is always chosen on *other* files, by the rule: highest F1 among settings with FAR <= 15 % on the
tuning files (highest F1 - FAR if none qualifies). Reported:

  A->B   tuned on valve1 files 0-7, scored on files 8-15
  B->A   tuned on files 8-15, scored on files 0-7
  LOO    for each file, tuned on the other 15 files; counts summed over the 16 held-out files
  free   the A-tuned setting on anomaly-free.csv (no labels: every alarm is false), three ways:
         400+      trained on its first 400 rows, FAR on the other 9,005 (2.5 h of slow drift after 7 min of
                   training: how far a 400-row model can be trusted in time)
         chunks    cut into 1,150-row pieces like the valve1 files, each trained on its first 400 rows
         half      trained on the first half, FAR on the second half

Honesty note: the grids of the first three detectors offer two feature sets, all eight sensors or all but the two
thermal ones; that second set was designed after looking at summary statistics of all 16 files, labels included.
The selection between settings is automatic and sees only the tuning files, but that menu was not blind, so those
held-out figures are somewhat optimistic. The fourth grid, "pca, any feature subset", has no hand-made feature
sets: it offers all 255 non-empty subsets of the sensors (x 12 PCA settings), so the tuning files alone choose
the metrics; it is the cleaner figure. The part of SKAB held back from this subset is the real test.

What a run gives (2026-11-28, shared 2-core machine; re-run to check): against the target (F1 >= 0.80 with
FAR <= 15 % on files never seen), the leave-one-out figures of robust z (F1 0.805, FAR 12.2 %) and of "pca, any
feature subset" (F1 0.839, FAR 13.1 %) meet it; PCA with the two feature sets (0.795, 14.2 %) and the isolation
forest (0.794, 12.7 %) fall just short on F1. The two half splits are less even: "pca, any subset" tuned on 0-7
gets F1 0.890 but FAR 15.9 % on 8-15 (over the cap), tuned on 8-15 it gets F1 0.751 with FAR 2.4 % on 0-7; no
detector meets both bounds on both splits. The published figures printed beside ours are for the full 34-file
SKAB (all its subsets), not this 16-file valve1 subset, so they are context, not a like-for-like ranking. The
"free" line is a warning for live use: a model fitted on 400 rows (under 7 minutes) alarms on about 98 % of the
following 2.5 hours of normal operation as the plant drifts; the same detectors trained on half of that file
alarm on 0-4 % of the other half. Train live models on long, representative history (``sentinel anomaly train
--since``), not on minutes.

Run: ``python bench/skab.py`` from the repository (about 1.5 minutes on the shared 2-core machine). Skips when the
data is absent.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from sentinel.engine.anomaly import AnomalyModel, FitSettings, Scorer, fit_model
from sentinel.engine.anomaly.pca import PcaStatistic

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "skab"
SENSORS = (
    "Accelerometer1RMS",
    "Accelerometer2RMS",
    "Current",
    "Pressure",
    "Temperature",
    "Thermocouple",
    "Voltage",
    "Volume Flow RateRMS",
)
# Slow thermal metrics: they drift for hours and do not return with the process, so a level-based limit on them
# keeps alarming after an anomaly ends. Whether to drop them is one of the tuned settings, not a fixed choice.
THERMAL = ("Temperature", "Thermocouple")
FEATURE_SETS = {"all8": SENSORS, "no-thermal": tuple(s for s in SENSORS if s not in THERMAL)}
TRAIN_ROWS = 400
FAR_CAP = 0.15
TUNE_A = tuple(range(8))
TUNE_B = tuple(range(8, 16))
PUBLISHED = (
    ("Conv-AE", "0.78", "13.55"),
    ("MSET", "0.78", "39.73"),
    ("PCA T²+Q", "0.76", "26.62"),
    ("LSTM-AE", "0.74", ""),
    ("T²", "0.66", ""),
    ("LSTM-VAE", "0.56", ""),
    ("Vanilla LSTM", "0.54", ""),
    ("Vanilla AE", "0.39", ""),
    ("MSCRED", "0.36", ""),
    ("Isolation Forest", "0.29", ""),
)

Counts = npt.NDArray[np.int64]  # (tp, fp, fn, tn)


@dataclass(frozen=True)
class Candidate:
    features: tuple[str, ...]
    settings: FitSettings

    def describe(self) -> str:
        s = self.settings
        detail = {
            "pca": f"stat={s.pca_statistic} var={s.pca_variance}",
            "iforest": f"trees={s.trees}",
            "robust_z": f"window={s.window}",
        }[s.detector]
        named = [name for name, columns in FEATURE_SETS.items() if columns == self.features]
        features = named[0] if named else "[" + ", ".join(self.features) + "]"
        return f"{features} {detail} smooth={s.smoothing} q={s.limit_quantile}"


def candidates() -> dict[str, list[Candidate]]:
    """The grid searched for each detector."""
    grid: dict[str, list[Candidate]] = {"pca": [], "iforest": [], "robust_z": [], "pca, any feature subset": []}
    for features in FEATURE_SETS.values():
        for smoothing, quantile in itertools.product((1, 10, 30), (0.99, 1.0)):
            base = FitSettings(smoothing=smoothing, limit_quantile=quantile)
            for statistic in ("t2", "q", "combined"):
                for variance in (0.9, 0.99):
                    pca = replace(base, detector="pca", pca_statistic=statistic, pca_variance=variance)
                    grid["pca"].append(Candidate(features, pca))
            grid["iforest"].append(Candidate(features, replace(base, detector="iforest", trees=100)))
            for window in (10, 30, 60):
                grid["robust_z"].append(Candidate(features, replace(base, detector="robust_z", window=window)))
    # No hand-picked feature sets here: every non-empty subset of the eight sensors is a candidate, so which
    # metrics to model is decided by the tuning files alone.
    subsets = [c for k in range(1, len(SENSORS) + 1) for c in itertools.combinations(SENSORS, k)]
    statistics: tuple[PcaStatistic, ...] = ("t2", "combined")
    for features in subsets:
        for statistic, smoothing, quantile in itertools.product(statistics, (1, 10, 30), (0.99, 1.0)):
            pca = FitSettings(pca_statistic=statistic, smoothing=smoothing, limit_quantile=quantile)
            grid["pca, any feature subset"].append(Candidate(features, pca))
    return grid


@dataclass(frozen=True)
class Recording:
    name: str
    frame: pl.DataFrame
    labels: npt.NDArray[np.bool_] | None


def load(path: Path, labelled: bool = True) -> Recording:
    frame = pl.read_csv(path, separator=";")
    labels = frame["anomaly"].to_numpy() > 0.5 if labelled else None
    return Recording(path.name, frame, labels)


def alarms(recording: Recording, candidate: Candidate) -> npt.NDArray[np.bool_]:
    """Fit on the first rows, score the whole file through the engine's scorer, return the test rows' alarms."""
    values = recording.frame.select(candidate.features).to_numpy().astype(np.float64)
    model = fit_model(values[:TRAIN_ROWS], candidate.features, candidate.settings)
    return model.score(values).alarm[TRAIN_ROWS:]


def free_false_alarm_rates(free: Recording, candidate: Candidate) -> dict[str, float]:
    """False-alarm rates on the anomaly-free recording, for three ways of choosing its training rows."""
    values = free.frame.select(candidate.features).to_numpy().astype(np.float64)
    names = candidate.features

    def far(train_rows: int, part: npt.NDArray[np.float64]) -> tuple[int, int]:
        model = fit_model(part[:train_rows], names, candidate.settings)
        alarm = model.score(part).alarm[train_rows:]
        return int(alarm.sum()), len(alarm)

    first = far(TRAIN_ROWS, values)
    chunk_rows = 1150
    pieces = [far(TRAIN_ROWS, values[s : s + chunk_rows]) for s in range(0, len(values) - chunk_rows + 1, chunk_rows)]
    half = far(len(values) // 2, values)
    return {
        f"{TRAIN_ROWS}+": first[0] / first[1],
        f"{len(pieces)} chunks": sum(p[0] for p in pieces) / sum(p[1] for p in pieces),
        "half": half[0] / half[1],
    }


def count(alarm: npt.NDArray[np.bool_], truth: npt.NDArray[np.bool_]) -> Counts:
    return np.array(
        [np.sum(alarm & truth), np.sum(alarm & ~truth), np.sum(~alarm & truth), np.sum(~alarm & ~truth)],
        dtype=np.int64,
    )


def rates(counts: Counts) -> tuple[float, float, float]:
    tp, fp, fn, tn = (int(v) for v in counts)
    f1 = tp / (tp + (fp + fn) / 2) if tp + fp + fn else 0.0
    far = fp / (fp + tn) if fp + tn else 0.0
    mar = fn / (fn + tp) if fn + tp else 0.0
    return f1, far, mar


def choose(table: Counts, files: Iterable[int]) -> int:
    """Index of the setting with the best F1 among those with FAR <= cap on ``files`` (table: setting x file x 4)."""
    summed = table[:, list(files), :].sum(axis=1)
    scored = [rates(row) for row in summed]
    feasible = [i for i, (_, far, _) in enumerate(scored) if far <= FAR_CAP]
    if feasible:
        return max(feasible, key=lambda i: scored[i][0])
    return max(range(len(scored)), key=lambda i: scored[i][0] - scored[i][1])


def fmt(counts: Counts) -> str:
    f1, far, mar = rates(counts)
    return f"F1 {f1:5.3f}  FAR {100 * far:5.1f} %  MAR {100 * mar:5.1f} %"


def evaluate(kind: str, grid: Sequence[Candidate], files: Sequence[Recording], free: Recording) -> None:
    started = time.perf_counter()
    table = np.zeros((len(grid), len(files), 4), dtype=np.int64)
    for i, candidate in enumerate(grid):
        for j, recording in enumerate(files):
            assert recording.labels is not None
            table[i, j] = count(alarms(recording, candidate), recording.labels[TRAIN_ROWS:])
    a_best, b_best = choose(table, TUNE_A), choose(table, TUNE_B)
    loo = np.zeros(4, dtype=np.int64)
    loo_choices: dict[str, int] = {}
    for j in range(len(files)):
        best = choose(table, (k for k in range(len(files)) if k != j))
        loo += table[best, j]
        loo_choices[grid[best].describe()] = loo_choices.get(grid[best].describe(), 0) + 1
    free_far = free_false_alarm_rates(free, grid[a_best])
    print(f"\n== {kind}: {len(grid)} settings x {len(files)} files in {time.perf_counter() - started:.1f} s")
    print(f"  A->B  tuned on 0-7  : {grid[a_best].describe()}")
    print(f"        on 0-7 (seen) : {fmt(table[a_best, list(TUNE_A)].sum(axis=0))}")
    print(f"        on 8-15 (held): {fmt(table[a_best, list(TUNE_B)].sum(axis=0))}")
    print(f"  B->A  tuned on 8-15 : {grid[b_best].describe()}")
    print(f"        on 0-7 (held) : {fmt(table[b_best, list(TUNE_A)].sum(axis=0))}")
    print(f"  LOO   16 held-out   : {fmt(loo)}")
    for described, times in sorted(loo_choices.items(), key=lambda kv: -kv[1]):
        print(f"        chosen {times:2d}x : {described}")
    print(
        "  free  A-tuned, anomaly-free.csv FAR: "
        + ", ".join(f"{name} {100 * far:5.1f} %" for name, far in free_far.items())
    )


def scorer_factory(model: AnomalyModel) -> Callable[[], Callable[[npt.NDArray[np.float64]], object]]:
    """A fresh live scorer per timing run, so that every run starts from the same state."""
    return lambda: Scorer(model).score_batch


def throughput(free: Recording) -> None:
    """Scoring speed per detector on the anomaly-free recording, beside a plain numpy pass over the same rows."""
    names = FEATURE_SETS["all8"]
    values = free.frame.select(names).to_numpy().astype(np.float64)
    rows = np.concatenate([values] * 4)  # ~37,600 rows

    def rate(make: Callable[[], Callable[[npt.NDArray[np.float64]], object]], batch: int) -> float:
        # Best of three runs: the machine is shared, and the best run is the least disturbed one.
        best = float("inf")
        for _ in range(3):
            score = make()
            started = time.perf_counter()
            for start in range(0, len(rows), batch):
                score(rows[start : start + batch])
            best = min(best, time.perf_counter() - started)
        return len(rows) / best

    def baseline(part: npt.NDArray[np.float64]) -> object:
        # What any vectorised pass costs at least: standardise the batch and reduce it once.
        return np.abs((part - part.mean(axis=0)) / (part.std(axis=0) + 1.0)).max(axis=1)

    print(f"\nScoring throughput, {len(rows)} rows x {len(names)} features (rows/s; ratio to the numpy baseline):")
    print(f"  {'detector':26s} {'batch 100':>16s} {'batch 1000':>16s}")
    base = {batch: rate(lambda: baseline, batch) for batch in (100, 1000)}
    print(f"  {'numpy baseline':26s} {base[100]:>10,.0f}  1.00 {base[1000]:>10,.0f}  1.00")
    for label, settings in (
        ("pca t2", FitSettings(detector="pca", pca_statistic="t2")),
        ("pca combined (default)", FitSettings()),
        ("iforest 100 trees", FitSettings(detector="iforest", smoothing=10)),
        ("robust_z window 10", FitSettings(detector="robust_z", window=10, smoothing=1)),
    ):
        model = fit_model(values[:TRAIN_ROWS], names, settings)
        got = {batch: rate(scorer_factory(model), batch) for batch in (100, 1000)}
        print(
            f"  {label:26s} {got[100]:>10,.0f} {got[100] / base[100]:5.2f}"
            f" {got[1000]:>10,.0f} {got[1000] / base[1000]:5.2f}"
        )


def main() -> int:
    if not DATA.is_dir():
        print(f"skab: data not found at {DATA}; skipping (see ../shared/data/README.md)")
        return 0
    files = [load(DATA / "valve1" / f"{i}.csv") for i in range(16)]
    free = load(DATA / "anomaly-free" / "anomaly-free.csv", labelled=False)
    test_rows = sum(len(f.frame) - TRAIN_ROWS for f in files)
    anomalous = sum(int(f.labels[TRAIN_ROWS:].sum()) for f in files if f.labels is not None)
    print(f"SKAB valve1: 16 files, {test_rows} test rows, {anomalous} labelled anomalous ({anomalous / test_rows:.0%})")
    always = np.array([anomalous, test_rows - anomalous, 0, 0], dtype=np.int64)
    print(f"baseline 'always alarm': {fmt(always)}")
    for kind, grid in candidates().items():
        evaluate(kind, grid, files, free)
    throughput(free)
    print("\nPublished outlier-detection F1 on the full SKAB (34 files; FAR where the README gives it):")
    for name, f1, far in PUBLISHED:
        print(f"  {name:18s} F1 {f1}" + (f"  FAR {far} %" if far else ""))
    print("Target: F1 >= 0.80 with FAR <= 15 % on files the detector never saw (the held-out rows above).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
