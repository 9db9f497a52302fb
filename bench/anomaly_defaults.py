"""What a user gets from `sentinel anomaly fit` then `score` with their defaults, on SKAB valve1 and on NAB.

Nothing here is tuned: every file is fitted and scored through the command line code (the typer app of
``sentinel anomaly``, as ``python -m sentinel anomaly fit ...`` runs it), with no option but the file's separator
and, on SKAB, ``--exclude`` of the two label columns. The labels are read only to count.

SKAB valve1 (the published protocol): the first 400 rows of each file are written to a CSV and fitted; the whole
file is scored (the training rows are the history in front of the first test row); the rows after the first 400
are counted point by point against ``anomaly``, summed over the 16 files: F1 = TP / (TP + (FP + FN) / 2),
FAR = FP / (FP + TN), MAR = FN / (FN + TP). Target: F1 >= 0.80 with FAR <= 15 %.

Drift (the same CLI, same defaults): SKAB anomaly-free fitted on its first 400 rows, then on its first quarter,
FAR over every row after the training part; and valve1 as the one five-hour session its 16 files are (contiguous
time stamps, 10:14 to 15:34), fitted on its first 400 rows and scored to the end: FAR on the later normal rows,
share of fault rows alarmed, faults with at least one alarm. Each beside ``--limit-folds 0`` (the in-sample limit),
and the session also beside ``--no-drift``.

Deadband: the same valve1 runs and SKAB anomaly-free cut into valve1-sized pieces (1,150 rows, each fitted on its
first 400), with the defaults (a raised alarm clears below 0.9 of the limit) and with ``--clear 1`` (none): alarms
raised per 1,000 scored rows (no labels needed), alarmed rows, and valve1's F1.

NAB (the simple protocol of ../shared/data/README.md): the first 15 % of a file trains, the rest is scored; a
labelled window counts as detected when at least one alarm falls inside it; false alarms are alarmed points
outside every window, per 1,000 scored points. Windows that end inside the training part are not counted (nothing
there is scored). Beside it, in the same run, a trivial baseline: a 3-sigma limit (mean +- 3 standard deviations
of the same training part) on the raw value, one alarm per point beyond it.

Run: ``PYTHONPATH=src python bench/anomaly_defaults.py [--skab DIR] [--nab DIR]`` (under a minute; skips a data set
that is absent).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
from typer.testing import CliRunner

from sentinel.engine.anomaly.commands import anomaly_app
from sentinel.testing.datasets import shared_data

DATA = shared_data(__file__)
TRAIN_ROWS = 400
NAB_TRAIN_SHARE = 0.15
LABELS = ("anomaly", "changepoint")

Bools = npt.NDArray[np.bool_]


def cli(*args: str) -> str:
    """Run one `sentinel anomaly` command; its output, or the run stops with its error."""
    result = CliRunner().invoke(anomaly_app, list(args))
    if result.exit_code != 0:
        raise SystemExit(f"sentinel anomaly {' '.join(args)} failed:\n{result.output}{result.exception!r}")
    return result.output


def fit_and_score(train: Path, scored: Path, work: Path, sep: str, *extra: str) -> tuple[Bools, str]:
    """`fit --csv train` then `score --csv scored` with defaults; the alarm column and fit's message."""
    model, out = work / "model.npz", work / "scores.csv"
    said = cli("fit", "--csv", str(train), "--out", str(model), "--sep", sep, *extra)
    cli("score", "--model", str(model), "--csv", str(scored), "--out", str(out), "--sep", sep)
    return pl.read_csv(out, separator=sep)["alarm"].to_numpy() == 1, said


def counts(alarm: Bools, truth: Bools) -> npt.NDArray[np.int64]:
    return np.array([(alarm & truth).sum(), (alarm & ~truth).sum(), (~alarm & truth).sum(), (~alarm & ~truth).sum()])


def rates(c: npt.NDArray[np.int64]) -> str:
    tp, fp, fn, tn = (int(v) for v in c)
    f1 = tp / (tp + (fp + fn) / 2) if tp + fp + fn else 0.0
    return f"F1 {f1:5.3f}  FAR {100 * fp / max(fp + tn, 1):5.1f} %  MAR {100 * fn / max(fn + tp, 1):5.1f} %"


def skab(folder: Path, work: Path) -> npt.NDArray[np.int64] | None:
    files = sorted(folder.glob("*.csv"), key=lambda p: (not p.stem.isdigit(), int(p.stem) if p.stem.isdigit() else 0))
    if not files:
        print(f"SKAB: no files at {folder}; skipped")
        return None
    print(f"\nSKAB {folder.name}: `sentinel anomaly fit` on each file's first {TRAIN_ROWS} rows, `score` on the file")
    print(f"  {'file':8s} {'test rows':>9s} {'anomalous':>9s}  {'F1 / FAR / MAR':34s} not used (slow)")
    total = np.zeros(4, dtype=np.int64)
    halves = [np.zeros(4, dtype=np.int64), np.zeros(4, dtype=np.int64)]
    for number, path in enumerate(files):
        frame = pl.read_csv(path, separator=";")
        train = work / "train.csv"
        frame.head(TRAIN_ROWS).write_csv(train, separator=";")
        extra = [a for label in LABELS if label in frame.columns for a in ("--exclude", label)]
        alarm, said = fit_and_score(train, path, work, ";", *extra)
        truth = frame["anomaly"].to_numpy()[TRAIN_ROWS:] > 0.5
        c = counts(alarm[TRAIN_ROWS:], truth)
        total += c
        halves[number >= len(files) // 2] += c
        slow = (
            said.split("not used (too slow in training for the limit): ")[-1].split(";")[0]
            if "not used" in said
            else "-"
        )
        print(f"  {path.name:8s} {len(truth):9d} {int(truth.sum()):9d}  {rates(c):34s} {slow}")
    half = len(files) // 2
    print(f"  {f'files 0-{half - 1}':18s} {'':9s} {rates(halves[0])}")
    print(f"  {f'files {half}-{len(files) - 1}':18s} {'':9s} {rates(halves[1])}")
    print(f"  {'all':8s} {'':9s} {'':9s}  {rates(total)}")
    return total


def drift(skab_root: Path, work: Path) -> None:
    """Later normal periods of the same process: a model of the first minutes, scored for hours.

    anomaly-free: fitted on its first 400 rows, then on its first quarter; the false-alarm rate over every row
    after the training part (all normal). valve1 as one session: its 16 files are one continuous recording
    (10:14 to 15:34 on one day), so a model fitted on the first 400 rows of file 0 scores the five hours after
    it, with 16 real labelled faults in them: FAR on the later normal rows, the share of fault rows alarmed, and
    faults with at least one alarm. (anomaly-free and valve1 are not joined: a month apart, at another operating
    point, 160-180 training standard deviations away on three sensors.)
    """
    free = skab_root / "anomaly-free" / "anomaly-free.csv"
    print("\nSKAB drift: a model of the first minutes, scored on the hours after (defaults, then --limit-folds 0)")
    if free.is_file():
        frame = pl.read_csv(free, separator=";")
        for rows in (TRAIN_ROWS, len(frame) // 4):
            train = work / "train.csv"
            frame.head(rows).write_csv(train, separator=";")
            figures = []
            for options in ([], ["--limit-folds", "0"]):
                alarm, _ = fit_and_score(train, free, work, ";", *options)
                figures.append(f"FAR {100 * alarm[rows:].mean():5.1f} %")
            print(f"  anomaly-free, fitted on its first {rows:5d} rows: {figures[0]}   (in-sample limit: {figures[1]})")
    else:
        print(f"  anomaly-free: not found at {free}; skipped")
    valve1 = sorted((skab_root / "valve1").glob("*.csv"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    if not valve1:
        print("  valve1: not found; skipped")
        return
    session = pl.concat([pl.read_csv(p, separator=";") for p in valve1])
    whole, train = work / "session.csv", work / "train.csv"
    session.write_csv(whole, separator=";")
    session.head(TRAIN_ROWS).write_csv(train, separator=";")
    fault = session["anomaly"].to_numpy() > 0.5
    later = np.arange(len(session)) >= TRAIN_ROWS
    heads = np.flatnonzero(np.diff(fault.astype(np.int8), prepend=0) == 1)
    ends = np.flatnonzero(np.diff(fault.astype(np.int8), append=0) == -1) + 1
    variants: list[tuple[str, list[str]]] = [
        ("defaults", []),
        ("--limit-folds 0", ["--limit-folds", "0"]),
        ("--no-drift", ["--no-drift"]),
    ]
    for name, extra in variants:
        excluded = [a for label in LABELS for a in ("--exclude", label)]
        alarm, _ = fit_and_score(train, whole, work, ";", *excluded, *extra)
        seen = sum(bool(alarm[a:b].any()) for a, b in zip(heads, ends, strict=True))
        print(
            f"  valve1 session ({len(session)} rows), fitted on its first {TRAIN_ROWS}, {name:16s}: FAR "
            f"{100 * alarm[later & ~fault].mean():5.1f} % on later normal rows, {100 * alarm[fault].mean():5.1f} % "
            f"of fault rows, {seen} of {len(heads)} faults seen"
        )


def activations(alarm: Bools) -> int:
    """Alarms raised (a row alarming after one that did not): what a duty officer counts, not alarmed rows."""
    return int(np.sum(np.diff(alarm.astype(np.int8), prepend=0) == 1))


def deadband(skab_root: Path, work: Path) -> None:
    """The alarm deadband (``--clear``) against none: alarms raised per 1,000 scored rows (no labels needed) and
    alarmed rows, on valve1's files and on SKAB anomaly-free cut into valve1-sized pieces (1,150 rows, each fitted
    on its first 400); valve1's F1 beside."""
    print("\nSKAB deadband: defaults (raised alarms clear below 0.9 of the limit) against --clear 1 (no deadband)")
    valve1 = sorted((skab_root / "valve1").glob("*.csv"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    free = skab_root / "anomaly-free" / "anomaly-free.csv"
    pieces: list[pl.DataFrame] = []
    if free.is_file():
        frame = pl.read_csv(free, separator=";")
        pieces = [frame.slice(start, 1150) for start in range(0, len(frame) - 1150 + 1, 1150)]
    for name, options in (("defaults", []), ("--clear 1", ["--clear", "1"])):
        line = f"  {name:10s}"
        if valve1:
            total, raised, rows = np.zeros(4, dtype=np.int64), 0, 0
            for path in valve1:
                frame = pl.read_csv(path, separator=";")
                frame.head(TRAIN_ROWS).write_csv(work / "train.csv", separator=";")
                extra = [a for label in LABELS if label in frame.columns for a in ("--exclude", label)]
                alarm, _ = fit_and_score(work / "train.csv", path, work, ";", *extra, *options)
                total += counts(alarm[TRAIN_ROWS:], frame["anomaly"].to_numpy()[TRAIN_ROWS:] > 0.5)
                raised += activations(alarm[TRAIN_ROWS:])
                rows += len(frame) - TRAIN_ROWS
            line += f" valve1: {rates(total)}, {1000 * raised / rows:4.1f} alarms raised per 1,000 rows;"
        if pieces:
            raised = alarmed = rows = 0
            for piece in pieces:
                piece.write_csv(work / "piece.csv", separator=";")
                piece.head(TRAIN_ROWS).write_csv(work / "train.csv", separator=";")
                alarm, _ = fit_and_score(work / "train.csv", work / "piece.csv", work, ";", *options)
                raised += activations(alarm[TRAIN_ROWS:])
                alarmed += int(alarm[TRAIN_ROWS:].sum())
                rows += len(piece) - TRAIN_ROWS
            line += f" anomaly-free pieces: {1000 * raised / rows:4.1f} per 1,000, FAR {100 * alarmed / rows:4.1f} %"
        print(line)


def nab_windows(labels: dict[str, list[list[str]]], key: str) -> list[tuple[np.datetime64, np.datetime64]]:
    return [(np.datetime64(a.replace(" ", "T")), np.datetime64(b.replace(" ", "T"))) for a, b in labels.get(key, [])]


def window_score(
    alarm: Bools, times: npt.NDArray[np.datetime64], windows: Sequence[tuple[np.datetime64, np.datetime64]]
) -> tuple[int, int, int]:
    """(windows scored, windows detected, false alarm points) over the scored rows."""
    inside = np.zeros(len(times), dtype=np.bool_)
    scored = detected = 0
    for start, end in windows:
        hit = (times >= start) & (times <= end)
        inside |= hit
        if hit.any():
            scored += 1
            detected += int((alarm & hit).any())
    return scored, detected, int((alarm & ~inside).sum())


def nab(folder: Path, work: Path) -> None:
    labels_path = folder / "labels.json"
    if not labels_path.is_file():
        print(f"NAB: no labels.json at {folder}; skipped")
        return
    labels: dict[str, list[list[str]]] = json.loads(labels_path.read_text())
    print(
        f"\nNAB ({len(labels)} files): first {NAB_TRAIN_SHARE:.0%} trains; "
        "windows detected, false alarm points per 1,000"
    )
    print(f"  {'file':48s} {'points':>6s} {'win':>3s}  {'defaults':>14s}  {'3-sigma':>14s}")
    sums = {"defaults": [0, 0, 0], "3-sigma": [0, 0, 0]}
    points = 0
    for key in sorted(labels):
        path = folder / key
        frame = pl.read_csv(path)
        n_train = int(len(frame) * NAB_TRAIN_SHARE)
        train = work / "train.csv"
        frame.head(n_train).write_csv(train)
        alarm, _ = fit_and_score(train, path, work, ",")
        times = frame["timestamp"].str.to_datetime().to_numpy()[n_train:]
        value = frame["value"].to_numpy().astype(np.float64)
        mean, sd = value[:n_train].mean(), value[:n_train].std(ddof=1)
        sigma = np.abs(value[n_train:] - mean) > 3 * (sd if sd > 0 else 1e-12)
        windows = nab_windows(labels, key)
        row = []
        for name, a in (("defaults", alarm[n_train:]), ("3-sigma", sigma)):
            scored, detected, false = window_score(a, times, windows)
            sums[name] = [s + v for s, v in zip(sums[name], (scored, detected, false), strict=True)]
            row.append(f"{detected}/{scored} {1000 * false / len(times):7.1f}")
        points += len(times)
        print(f"  {key:48s} {len(times):6d} {len(windows):3d}  {row[0]:>14s}  {row[1]:>14s}")
    for name, (scored, detected, false) in sums.items():
        rate = 1000 * false / points
        print(f"  {name:9s} all files: {detected} of {scored} windows detected, {rate:.1f} false alarms per 1,000")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/anomaly_defaults.py", description=__doc__.splitlines()[0])
    parser.add_argument("--skab", type=Path, default=DATA / "skab" / "valve1", help="a folder of SKAB-format files")
    parser.add_argument("--nab", type=Path, default=DATA / "nab", help="a NAB folder with labels.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        total = skab(args.skab, Path(tmp)) if args.skab.is_dir() else None
        if total is None and not args.skab.is_dir():
            print(f"SKAB: not found at {args.skab}; skipped")
        drift(args.skab.parent, Path(tmp))
        deadband(args.skab.parent, Path(tmp))
        if args.nab.is_dir():
            nab(args.nab, Path(tmp))
        else:
            print(f"NAB: not found at {args.nab}; skipped")
    if total is not None:
        tp, fp, fn, tn = (int(v) for v in total)
        f1, far = tp / (tp + (fp + fn) / 2), fp / (fp + tn)
        met = "yes" if f1 >= 0.80 and far <= 0.15 else "no"
        print(
            f"\nSKAB target F1 >= 0.80 with FAR <= 15 % with the defaults: {met} (F1 {f1:.3f}, FAR {100 * far:.1f} %)"
        )
    print(f"Run time {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
