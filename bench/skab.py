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

The first section, ``defaults (no tuning)``, is a one-setting grid: ``FitSettings()`` on all eight sensors, what
``sentinel anomaly fit`` uses (slow features left out by a rule on the training rows, drift-following centre). No
label enters it, so its LOO equals its score on all files; every section also prints ``seen``, the setting chosen
on all files scored on those same files, and the gap between that and LOO (how much tuning flattered the figure).
The tuned grids keep a fixed centre, every feature of their set, the in-sample limit and no alarm deadband
(``drift=False, drop_slow=False, limit_folds=0, clear=1.0``), as before.

Honesty note: the grids of the first three detectors offer two feature sets, all eight sensors or all but the two
thermal ones; that second set was designed after looking at summary statistics of all 16 files, labels included.
The selection between settings is automatic and sees only the tuning files, but that menu was not blind, so those
held-out figures are somewhat optimistic. The fourth grid, "pca, any feature subset", has no hand-made feature
sets: it offers all 255 non-empty subsets of the sensors (x 12 PCA settings), so the tuning files alone choose
the metrics; it is the cleaner figure. The part of SKAB held back from this subset is the real test.

What a run gives (2026-11-28, shared 2-core machine; re-run to check): against the target (F1 >= 0.80 with
FAR <= 15 % on files never seen), the leave-one-out figures of robust z (F1 0.804, FAR 14.4 %) and of "pca, any
feature subset" (F1 0.839, FAR 13.1 %) meet it; PCA with the two feature sets (0.795, 14.2 %) and the isolation
forest (0.794, 12.7 %) fall just short on F1. The two half splits are less even: "pca, any subset" tuned on 0-7
gets F1 0.890 but FAR 15.9 % on 8-15 (over the cap), tuned on 8-15 it gets F1 0.751 with FAR 2.4 % on 0-7; no
detector meets both bounds on both splits. The published figures printed beside ours are for the full 34-file
SKAB (all its subsets), not this 16-file valve1 subset, so they are context, not a like-for-like ranking. The
"free" line is a warning for live use: a model fitted on 400 rows (under 7 minutes) alarms on about 98 % of the
following 2.5 hours of normal operation as the plant drifts; the same detectors trained on half of that file
alarm on 0-4 % of the other half. Train live models on long, representative history (``sentinel anomaly train
--since``), not on minutes.

Files never seen at all (``--holdout``). LOO only holds files out of this 16-file subset, whose files also shaped the
grids; the part of SKAB held back from it (e.g. its valve2/ and other/ folders) is the real test. ``--holdout DIR
[DIR ...]`` scores such folders: each detector's setting is chosen on *all* development files by the same rule
(nothing from a holdout file enters the choice), then every holdout file is scored by the published protocol (its
own first 400 rows train a fresh model, the rest are scored) and the counts are summed per folder and overall.
Holdout files are checked before any tuning starts, and every problem is reported at once, naming file and column:
each must be a ``;``-separated CSV with a ``datetime`` column in ascending order, the eight SKAB sensor columns
(numeric, no empty cells; extra columns are ignored) and an ``anomaly`` label column of 0/1 (``changepoint`` is not
scored, so it is not required), and more than 400 rows. A file without labels is refused: there is nothing to
count it against. A file missing a sensor is refused rather than the grids being cut down to the columns all files
share: every grid offers settings on all eight sensors, so which columns a setting needs is only known after
tuning, and a grid shrunk to fit the holdout would be chosen with knowledge of the holdout (its columns) and give
figures that no longer compare with the LOO ones. A holdout file that repeats a development file (same sensor values
and labels, whatever its time stamps or name) is scored but flagged, and the summary says those figures are not on
unseen files. On robust_z and quantised sensors: Pressure and Volume Flow RateRMS are quantised in valve1 (MAD 0
over the training rows). robust_z's scale is the larger of the MAD and the mean absolute deviation (both as
standard-deviation estimates), so a jitter on such a sensor does not shrink it: on valve1/5.csv, 1e-6 of Gaussian
noise added to Pressure leaves its scale at 0.197 and the fitted limit at 1.662, and the recall of the setting
chosen on all 16 files stays 0.85 (FAR 24 % without the noise, 27 % with it: rows whose statistic sat exactly on
the quantised limit tip over). Before this floor (the MAD, with a fallback only when it was exactly 0) the scale
fell to 2e-6 there, the limit of the setting then chosen rose from 1.47 to about 165,000 and its recall fell
from 0.80 to 0.01.

Options: ``--data DIR`` the development subset (``DIR/valve1/*.csv``, optionally ``DIR/anomaly-free/anomaly-free.csv``;
default ../shared/data/skab); with other than 16 development files, A/B are the first and second half in file-number
order. ``--holdout DIR [DIR ...]`` folders (or single files) of labelled SKAB-format CSVs. ``--quick`` small grids
and no throughput table: a smoke run whose figures are not the benchmark's. The summary at the end states for each
detector whether the target holds under LOO and, when given, on the holdout files.

Run: ``python bench/skab.py [--data DIR] [--holdout DIR ...] [--quick]`` from the repository (about 1.5 minutes on
the shared 2-core machine; scoring a holdout adds only one setting per detector and file). Without ``--data`` or
``--holdout``, skips when the data is absent; exits with 2 and a one-line-per-problem message on unusable input.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from sentinel.engine.anomaly import AnomalyModel, FitSettings, Scorer, fit_model
from sentinel.engine.anomaly.pca import PcaStatistic
from sentinel.errors import DatasetError
from sentinel.testing.datasets import shared_data

DATA = shared_data(__file__) / "skab"
DEVELOPMENT_FOLDER = "valve1"
FREE_FILE = Path("anomaly-free") / "anomaly-free.csv"
TIME_COLUMN = "datetime"
LABEL_COLUMN = "anomaly"
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
DEFAULTS = "defaults (no tuning)"
TRAIN_ROWS = 400
TARGET_F1 = 0.80
FAR_CAP = 0.15
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
        adaptive = (" drop-slow" if s.drop_slow else "") + (" drift" if s.drift and s.detector != "robust_z" else "")
        return f"{features} {detail} smooth={s.smoothing} q={s.limit_quantile}{adaptive}"


def candidates(quick: bool = False) -> dict[str, list[Candidate]]:
    """The grid searched for each detector; ``quick`` keeps a small part of each (a smoke run, not the benchmark)."""
    smoothings = (10, 30) if quick else (1, 10, 30)
    quantiles = (0.99, 1.0)
    # The defaults: one setting, FitSettings() on all eight sensors, so "choosing" it sees no labels at all.
    grid: dict[str, list[Candidate]] = {DEFAULTS: [Candidate(SENSORS, FitSettings())]}
    grid |= {"pca": [], "iforest": [], "robust_z": [], "pca, any feature subset": []}
    # The tuned grids keep the fixed centre, every feature of their set, the quantile limit (also for one sensor)
    # and no alarm deadband, as before the defaults adapted: what they tune is what they were.
    for features in FEATURE_SETS.values():
        for smoothing, quantile in itertools.product(smoothings, quantiles):
            base = FitSettings(
                smoothing=smoothing,
                limit_quantile=quantile,
                drift=False,
                drop_slow=False,
                limit_folds=0,
                one_sensor_sigma=0,
                clear=1.0,
            )
            for statistic in ("t2", "combined") if quick else ("t2", "q", "combined"):
                for variance in (0.9,) if quick else (0.9, 0.99):
                    pca = replace(base, detector="pca", pca_statistic=statistic, pca_variance=variance)
                    grid["pca"].append(Candidate(features, pca))
            if not quick or (smoothing == 10 and features == FEATURE_SETS["no-thermal"]):
                grid["iforest"].append(Candidate(features, replace(base, detector="iforest", trees=100)))
            for window in (10,) if quick else (10, 30, 60):
                grid["robust_z"].append(Candidate(features, replace(base, detector="robust_z", window=window)))
    # No hand-picked feature sets here: every non-empty subset of the eight sensors is a candidate, so which
    # metrics to model is decided by the tuning files alone. (Quick: subsets of up to three sensors.)
    sizes = range(1, 4) if quick else range(1, len(SENSORS) + 1)
    subsets = [c for k in sizes for c in itertools.combinations(SENSORS, k)]
    statistics: tuple[PcaStatistic, ...] = ("t2",) if quick else ("t2", "combined")
    for features in subsets:
        for statistic, smoothing, quantile in itertools.product(statistics, smoothings, (1.0,) if quick else quantiles):
            pca = FitSettings(
                pca_statistic=statistic,
                smoothing=smoothing,
                limit_quantile=quantile,
                drift=False,
                drop_slow=False,
                limit_folds=0,
                one_sensor_sigma=0,  # one-sensor subsets are tuned like the others (smoothing, quantile)
                clear=1.0,
            )
            grid["pca, any feature subset"].append(Candidate(features, pca))
    return grid


@dataclass(frozen=True)
class Recording:
    name: str  # folder/file, as printed in messages
    group: str  # the folder (or file) it was given as: holdout counts are summed per group
    frame: pl.DataFrame  # the eight sensors, Float64, in SENSORS order
    labels: npt.NDArray[np.bool_] | None
    digest: str  # sha256 of sensor values and labels: a holdout copy of a development file is not unseen


def read_recording(path: Path, name: str, group: str, labelled: bool) -> Recording:
    """Read and check one SKAB-format file; every problem with it goes into one DatasetError naming the file."""
    try:
        raw = path.read_bytes()
        frame = pl.read_csv(raw, separator=";", infer_schema_length=None)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DatasetError(f"{name}: cannot be read as a ';'-separated CSV ({exc})") from exc
    if frame.width == 1:
        raise DatasetError(f"{name}: one column only ({frame.columns[0][:40]!r}...): not a ';'-separated CSV?")
    problems: list[str] = []
    if labelled and LABEL_COLUMN not in frame.columns:
        problems.append(f"no {LABEL_COLUMN!r} label column: an unlabelled file cannot be scored, so it is refused")
    if TIME_COLUMN not in frame.columns:
        problems.append(f"no column {TIME_COLUMN!r}")
    missing = [c for c in SENSORS if c not in frame.columns]
    if missing:
        problems.append(
            "no sensor column "
            + ", ".join(repr(c) for c in missing)
            + " (all eight SKAB sensors are required: each detector's grid has settings on every one)"
        )
    if labelled and frame.height <= TRAIN_ROWS:
        problems.append(f"{frame.height} rows; needs more than {TRAIN_ROWS} (the first {TRAIN_ROWS} train)")
    columns: dict[str, pl.Series] = {}
    for column in (c for c in SENSORS if c in frame.columns):
        try:
            series = frame[column].cast(pl.Float64, strict=True)
        except pl.exceptions.PolarsError:
            problems.append(f"column {column!r} is not numeric (type {frame[column].dtype})")
            continue
        bad = np.flatnonzero(~np.isfinite(series.fill_null(float("nan")).to_numpy()))
        if len(bad):
            problems.append(f"column {column!r}: {len(bad)} empty or non-finite values, first in data row {bad[0] + 1}")
        columns[column] = series
    if TIME_COLUMN in frame.columns:
        try:
            stamps = frame[TIME_COLUMN].cast(pl.String).str.to_datetime(strict=True)
        except pl.exceptions.PolarsError:
            problems.append(f"column {TIME_COLUMN!r} does not hold date-times")
        else:
            backwards = np.flatnonzero(np.diff(stamps.dt.epoch("ms").to_numpy()) < 0)
            if stamps.null_count() or len(backwards):
                where = f"data row {backwards[0] + 2}" if len(backwards) else "an empty cell"
                problems.append(
                    f"column {TIME_COLUMN!r} is not in ascending order ({where}); the protocol trains on the "
                    f"first {TRAIN_ROWS} rows in time"
                )
    labels = None
    if labelled and LABEL_COLUMN in frame.columns:
        try:
            values = frame[LABEL_COLUMN].cast(pl.Float64, strict=True).fill_null(float("nan")).to_numpy()
        except pl.exceptions.PolarsError:
            problems.append(f"column {LABEL_COLUMN!r} is not numeric (type {frame[LABEL_COLUMN].dtype})")
        else:
            odd = np.flatnonzero((values != 0.0) & (values != 1.0))
            if len(odd):
                problems.append(f"column {LABEL_COLUMN!r} must be 0 or 1 in every row (not in data row {odd[0] + 1})")
            labels = values > 0.5
    if problems:
        raise DatasetError(f"{name}: " + "; ".join(problems))
    sensors = pl.DataFrame([columns[c] for c in SENSORS])
    content = sensors.to_numpy().tobytes() + (labels.tobytes() if labels is not None else b"")
    return Recording(name, group, sensors, labels, hashlib.sha256(content).hexdigest())


def file_order(path: Path) -> tuple[int, int, str]:
    """SKAB numbers its files 0.csv, 1.csv, ...: numeric names in numeric order, then the others by name."""
    return (0, int(path.stem), "") if path.stem.isdigit() else (1, 0, path.name)


def load_files(paths: Sequence[Path], labelled: bool = True) -> list[Recording]:
    """Every .csv in the given folders (or the given files), checked; all problems are raised together."""
    entries: list[tuple[Path, str, str]] = []
    problems: list[str] = []
    for given in paths:
        if given.is_dir():
            found = sorted(given.glob("*.csv"), key=file_order)
            if not found:
                problems.append(f"{given}: no .csv files in this folder")
            entries += [(path, f"{given.name}/{path.name}", str(given)) for path in found]
        elif given.is_file():
            entries.append((given, given.name, str(given)))
        else:
            problems.append(f"{given}: no such folder or file")
    seen: set[Path] = set()
    recordings: list[Recording] = []
    for path, name, group in entries:
        if path.resolve() in seen:
            problems.append(f"{name}: given twice")
            continue
        seen.add(path.resolve())
        try:
            recordings.append(read_recording(path, name, group, labelled))
        except DatasetError as exc:
            problems.append(str(exc))
    if problems:
        raise DatasetError(f"{len(problems)} problem(s) with the input files:\n  " + "\n  ".join(problems))
    return recordings


def alarms(recording: Recording, candidate: Candidate) -> npt.NDArray[np.bool_]:
    """Fit on the first rows, score the whole file through the engine's scorer, return the test rows' alarms."""
    values = recording.frame.select(candidate.features).to_numpy().astype(np.float64)
    try:
        model = fit_model(values[:TRAIN_ROWS], candidate.features, candidate.settings)
    except DatasetError as exc:
        raise DatasetError(f"{recording.name}: {candidate.describe()}: {exc}") from exc
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
        f"{len(pieces)} chunks": sum(p[0] for p in pieces) / max(sum(p[1] for p in pieces), 1),
        "half": half[0] / half[1],
    }


def count(alarm: npt.NDArray[np.bool_], truth: npt.NDArray[np.bool_]) -> Counts:
    return np.array(
        [np.sum(alarm & truth), np.sum(alarm & ~truth), np.sum(~alarm & truth), np.sum(~alarm & ~truth)],
        dtype=np.int64,
    )


def file_counts(recording: Recording, candidate: Candidate) -> Counts:
    """The protocol on one file: its own first rows train, its test rows are counted against its labels."""
    assert recording.labels is not None
    return count(alarms(recording, candidate), recording.labels[TRAIN_ROWS:])


def total(per_file: Sequence[Counts]) -> Counts:
    summed = np.zeros(4, dtype=np.int64)
    for counts in per_file:
        summed += counts
    return summed


def rates(counts: Counts) -> tuple[float, float, float]:
    tp, fp, fn, tn = (int(v) for v in counts)
    f1 = tp / (tp + (fp + fn) / 2) if tp + fp + fn else 0.0
    far = fp / (fp + tn) if fp + tn else 0.0
    mar = fn / (fn + tp) if fn + tp else 0.0
    return f1, far, mar


def choose(table: Counts, files: Sequence[int]) -> int:
    """Index of the setting with the best F1 among those with FAR <= cap on ``files`` (table: setting x file x 4).

    Only the columns ``files`` of the table are read: nothing of any other file enters the choice."""
    summed = table[:, list(files), :].sum(axis=1)
    scored = [rates(row) for row in summed]
    feasible = [i for i, (_, far, _) in enumerate(scored) if far <= FAR_CAP]
    if feasible:
        return max(feasible, key=lambda i: scored[i][0])
    return max(range(len(scored)), key=lambda i: scored[i][0] - scored[i][1])


def leave_one_out(table: Counts) -> tuple[Counts, list[int]]:
    """For each file, the setting chosen on all the other files; the held-out files' counts summed, and the choices."""
    files = table.shape[1]
    chosen = [choose(table, [k for k in range(files) if k != j]) for j in range(files)]
    return total([table[best, j] for j, best in enumerate(chosen)]), chosen


def fmt(counts: Counts) -> str:
    f1, far, mar = rates(counts)
    return f"F1 {f1:5.3f}  FAR {100 * far:5.1f} %  MAR {100 * mar:5.1f} %"


def gap(seen: Counts, held: Counts) -> str:
    """How much better the figures are on the files a setting was tuned on than on files it was not."""
    (f1_seen, far_seen, _), (f1_held, far_held, _) = rates(seen), rates(held)
    return f"F1 {f1_seen - f1_held:+.3f}, FAR {100 * (far_seen - far_held):+.1f} points"


def verdict(counts: Counts) -> str:
    """Whether summed counts meet the target, and if not which bound they miss."""
    f1, far, _ = rates(counts)
    misses = ([f"F1 below {TARGET_F1:.2f}"] if f1 < TARGET_F1 else []) + (
        [f"FAR above {100 * FAR_CAP:.0f} %"] if far > FAR_CAP else []
    )
    return "no: " + " and ".join(misses) if misses else "yes"


def span(files: Sequence[Recording]) -> str:
    """'0-7' for valve1/0.csv ... valve1/7.csv."""
    return f"{Path(files[0].name).stem}-{Path(files[-1].name).stem}"


def groups(recordings: Sequence[Recording]) -> dict[str, list[int]]:
    """Indices of the recordings given under each holdout folder, in the order the folders were given."""
    found: dict[str, list[int]] = {}
    for i, recording in enumerate(recordings):
        found.setdefault(recording.group, []).append(i)
    return found


@dataclass(frozen=True)
class Outcome:
    kind: str
    loo: Counts
    holdout: Counts | None  # summed over all holdout files
    seen: Counts  # the setting chosen on all development files, scored on those same files (in-sample)


def evaluate(
    kind: str,
    grid: Sequence[Candidate],
    files: Sequence[Recording],
    free: Recording | None,
    holdout: Sequence[Recording] | None,
) -> Outcome:
    started = time.perf_counter()
    table = np.zeros((len(grid), len(files), 4), dtype=np.int64)
    for i, candidate in enumerate(grid):
        for j, recording in enumerate(files):
            table[i, j] = file_counts(recording, candidate)
    half = len(files) // 2
    tune_a, tune_b = range(half), range(half, len(files))
    a_files, b_files = files[:half], files[half:]
    a_best, b_best = choose(table, tune_a), choose(table, tune_b)
    loo, loo_chosen = leave_one_out(table)
    loo_choices: dict[str, int] = {}
    for best in loo_chosen:
        loo_choices[grid[best].describe()] = loo_choices.get(grid[best].describe(), 0) + 1
    held: Counts | None = None
    if holdout is not None:
        # Tuned on every development file and nothing else; each holdout file is scored only once, with the
        # setting so chosen.
        chosen = grid[choose(table, range(len(files)))]
        per_file = [file_counts(recording, chosen) for recording in holdout]
        held = total(per_file)
    print(f"\n== {kind}: {len(grid)} settings x {len(files)} files in {time.perf_counter() - started:.1f} s")
    a, b = span(a_files), span(b_files)
    print(f"  A->B  tuned on {a:5s}: {grid[a_best].describe()}")
    print(f"        on {a + ' (seen)':11s}: {fmt(table[a_best, list(tune_a)].sum(axis=0))}")
    print(f"        on {b + ' (held)':11s}: {fmt(table[a_best, list(tune_b)].sum(axis=0))}")
    print(f"  B->A  tuned on {b:5s}: {grid[b_best].describe()}")
    print(f"        on {a + ' (held)':11s}: {fmt(table[b_best, list(tune_a)].sum(axis=0))}")
    print(f"  LOO   {len(files)} held-out   : {fmt(loo)}")
    seen = table[choose(table, range(len(files)))].sum(axis=0)
    print(f"  seen  tuned on all, same  : {fmt(seen)}  (gap to LOO: {gap(seen, loo)})")
    for described, times in sorted(loo_choices.items(), key=lambda kv: -kv[1]):
        print(f"        chosen {times:2d}x : {described}")
    if free is not None:
        free_far = free_false_alarm_rates(free, grid[a_best])
        print(
            f"  free  A-tuned, {FREE_FILE.name} FAR: "
            + ", ".join(f"{name} {100 * far:5.1f} %" for name, far in free_far.items())
        )
    if holdout is not None and held is not None:
        print(f"  hold  tuned on all {len(files)}: {chosen.describe()}")
        folders = groups(holdout)
        if len(folders) > 1:
            for group, members in folders.items():
                print(f"        {len(members):3d} files in {group}: {fmt(total([per_file[i] for i in members]))}")
        print(f"        {len(holdout):3d} holdout files  : {fmt(held)}")
    return Outcome(kind, loo, held, seen)


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
        ("pca t2", FitSettings(detector="pca", pca_statistic="t2", drift=False, drop_slow=False, limit_folds=0)),
        ("pca combined, fixed centre", FitSettings(drift=False, drop_slow=False, limit_folds=0)),
        ("pca defaults (drift)", FitSettings()),
        (
            "iforest 100 trees",
            FitSettings(detector="iforest", smoothing=10, drift=False, drop_slow=False, limit_folds=0),
        ),
        ("robust_z window 10", FitSettings(detector="robust_z", window=10, smoothing=1, limit_folds=0)),
    ):
        model = fit_model(values[:TRAIN_ROWS], names, settings)
        got = {batch: rate(scorer_factory(model), batch) for batch in (100, 1000)}
        print(
            f"  {label:26s} {got[100]:>10,.0f} {got[100] / base[100]:5.2f}"
            f" {got[1000]:>10,.0f} {got[1000] / base[1000]:5.2f}"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/skab.py",
        description="SKAB benchmark of the anomaly detectors: half splits and leave-one-out on the development "
        "subset, and optionally files never seen at all (--holdout).",
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help=f"the development subset: DIR/{DEVELOPMENT_FOLDER}/*.csv, optionally DIR/{FREE_FILE} (default {DATA})",
    )
    parser.add_argument(
        "--holdout",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="folders (or files) of labelled SKAB-format CSVs, e.g. SKAB's valve2/ and other/: scored with each "
        "detector's setting tuned on all development files",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small grids and no throughput table: a smoke run, not the benchmark"
    )
    return parser.parse_args(argv)


def describe_files(title: str, files: Sequence[Recording]) -> None:
    """Size of a file set, and what the 'always alarm' detector scores on it."""
    test_rows = sum(f.frame.height - TRAIN_ROWS for f in files)
    anomalous = sum(int(f.labels[TRAIN_ROWS:].sum()) for f in files if f.labels is not None)
    share = f"{anomalous / test_rows:.0%}"
    print(f"{title}: {len(files)} files, {test_rows} test rows, {anomalous} labelled anomalous ({share})")
    always = np.array([anomalous, test_rows - anomalous, 0, 0], dtype=np.int64)
    print(f"  baseline 'always alarm': {fmt(always)}")


def summary(outcomes: Sequence[Outcome], development: int, holdout: Sequence[Recording] | None, copies: int) -> None:
    """Per detector, plainly: does the target hold under LOO, and on the holdout files when given."""
    print(f"\nTarget: F1 >= {TARGET_F1:.2f} with FAR <= {100 * FAR_CAP:.0f} % on files the detector never saw. Met?")
    loo = f"LOO, {development} files"
    held = f"holdout, {len(holdout)} files" if holdout is not None else ""
    width = max(len(loo), len(held))
    for outcome in outcomes:
        print(f"  {outcome.kind:24s} {loo:{width}s}  {fmt(outcome.loo)}  -> {verdict(outcome.loo)}")
        print(f"  {'':24s} {'gap':{width}s}  tuned-on minus held-out: {gap(outcome.seen, outcome.loo)}")
        if outcome.holdout is not None:
            print(f"  {'':24s} {held:{width}s}  {fmt(outcome.holdout)}  -> {verdict(outcome.holdout)}")
    print(f"  LOO: each file scored with a setting chosen on the other {development - 1} only. The pca, iforest and")
    print("  robust_z grids' two feature sets were designed with all development files in view, so their LOO figures")
    print("  are somewhat optimistic; 'pca, any feature subset' has no such menu. The defaults are one setting chosen")
    print("  without any label (FitSettings' docstring says from what), so nothing is tuned on any scored file and")
    print("  their gap is 0 by construction; but their design (slow features left out, drift following) was")
    print("  developed while their valve1 figures were in view, so valve1 is not an unseen set for them either.")
    if holdout is not None:
        print(f"  holdout: settings chosen on all {development} development files, no holdout file involved.")
        if copies:
            print(
                f"  NOT UNSEEN: {copies} of the {len(holdout)} holdout files repeat development files (same values and"
            )
            print("  labels): the holdout figures above are not on files the detectors never saw.")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    data: Path = args.data if args.data is not None else DATA
    if not data.is_dir():
        if args.data is None and args.holdout is None:
            print(f"skab: data not found at {data}; skipping (see ../shared/data/README.md)")
            return 0
        print(f"skab: development data not found at {data}", file=sys.stderr)
        return 2
    try:
        files = load_files([data / DEVELOPMENT_FOLDER])
        if len(files) < 2:
            raise DatasetError(f"{data / DEVELOPMENT_FOLDER}: needs at least 2 development files, found {len(files)}")
        free = load_files([data / FREE_FILE], labelled=False)[0] if (data / FREE_FILE).is_file() else None
        # Every holdout file is read and checked before the (long) tuning starts.
        holdout = load_files(args.holdout) if args.holdout is not None else None
    except DatasetError as exc:
        print(f"skab: {exc}", file=sys.stderr)
        return 2
    if args.quick:
        print("QUICK RUN: reduced grids, no throughput table; a smoke run, not the benchmark's figures.")
    describe_files(f"SKAB development ({data / DEVELOPMENT_FOLDER})", files)
    if free is None:
        print(f"  ({FREE_FILE} not found: no anomaly-free lines, no throughput table)")
    copies = 0
    if holdout is not None:
        describe_files("Holdout (" + ", ".join(groups(holdout)) + ")", holdout)
        seen = {f.digest: f.name for f in files}
        copied = [f"{h.name} = {seen[h.digest]}" for h in holdout if h.digest in seen]
        copies = len(copied)
        if copied:
            print(
                f"  WARNING: {copies} holdout files repeat development files (same values and labels): "
                + ", ".join(copied)
            )
    try:
        outcomes = [evaluate(kind, grid, files, free, holdout) for kind, grid in candidates(quick=args.quick).items()]
    except DatasetError as exc:  # a file the checks let through but a detector cannot fit (e.g. constant data)
        print(f"skab: {exc}", file=sys.stderr)
        return 2
    if free is not None and not args.quick:
        throughput(free)
    print("\nPublished outlier-detection F1 on the full SKAB (34 files; FAR where the README gives it):")
    for name, f1, far in PUBLISHED:
        print(f"  {name:18s} F1 {f1}" + (f"  FAR {far} %" if far else ""))
    summary(outcomes, len(files), holdout, copies)
    print(f"\nRun time {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
