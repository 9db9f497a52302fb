"""What refitting on recent normal history does to a model of a short training period: an offline simulation.

``serve`` refits an anomaly rule's model on its recent readings without the rule's alert periods
(:mod:`sentinel.engine.anomaly.refit`, off by default). This replays that policy on SKAB recordings, with the
model's own alarms standing in for alerts: fitted on the first 400 rows (defaults), scored batch by batch; every
``--every`` rows the model is refitted on the last ``--keep`` rows that did not alarm, leaving out ``--margin``
rows on each side of every alarmed row (serve leaves out 10 minutes around an alert), and the new model's state is
warmed on the 400 rows before it takes over. Beside it, in the same run, the baseline: the same fit, never refitted.

- SKAB anomaly-free (9,405 normal rows): the false-alarm rate after the first 400 rows.
- SKAB valve1 as the one five-hour session its 16 files are (16 labelled valve faults): the false-alarm rate on
  the later normal rows, the share of fault rows alarmed, and the faults with at least one alarm.

Labels only count; nothing is chosen with them. Run: ``PYTHONPATH=src python bench/anomaly_refit.py
[--every 1800] [--keep 3600] [--margin 0 60 600]`` (a few minutes; skips a data set that is absent).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import numpy.typing as npt
import polars as pl

from sentinel.engine.anomaly import fit_model
from sentinel.engine.anomaly.model import Scorer
from sentinel.testing.datasets import shared_data

SKAB = shared_data(__file__) / "skab"
TRAIN_ROWS = 400
Bools = npt.NDArray[np.bool_]


def replay(values: npt.NDArray[np.float64], names: tuple[str, ...], every: int, keep: int, margin: int) -> Bools:
    """Alarms of a model of the first rows, refitted every ``every`` rows (``every`` 0: never)."""
    scorer = Scorer(fit_model(values[:TRAIN_ROWS], names))
    scorer.score_batch(values[:TRAIN_ROWS])
    alarm = np.zeros(len(values), dtype=bool)
    usable = np.zeros(len(values), dtype=bool)
    usable[:TRAIN_ROWS] = True
    position = TRAIN_ROWS
    while position < len(values):
        stop = min(position + (every or len(values)), len(values))
        alarm[position:stop] = scorer.score_batch(values[position:stop]).alarm
        usable[position:stop] = True
        for row in np.flatnonzero(alarm[position:stop]) + position:
            usable[max(0, row - margin) : row + margin + 1] = False
        position = stop
        rows = np.flatnonzero(usable[:position])[-keep:]
        if every and position < len(values) and len(rows) >= TRAIN_ROWS:
            scorer = Scorer(fit_model(values[rows], names))
            scorer.score_batch(values[max(0, position - TRAIN_ROWS) : position])
    return alarm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1800, help="rows between refits (1 row a second)")
    parser.add_argument("--keep", type=int, default=3600, help="most recent usable rows a refit fits on")
    parser.add_argument("--margin", type=int, nargs="+", default=[0, 60, 600], help="rows left out around an alarm")
    args = parser.parse_args()
    started = time.perf_counter()
    free_csv = SKAB / "anomaly-free" / "anomaly-free.csv"
    valve1 = sorted((SKAB / "valve1").glob("*.csv"), key=lambda p: int(p.stem))
    runs = [("never refitted", 0, 0)] + [(f"refit, margin {m}", args.every, m) for m in args.margin]
    print(f"refit every {args.every} rows on the last {args.keep} usable rows; first {TRAIN_ROWS} rows train")
    if free_csv.is_file():
        frame = pl.read_csv(free_csv, separator=";")
        names = tuple(c for c in frame.columns if c != "datetime")
        values = frame.select(names).to_numpy().astype(np.float64)
        for label, every, margin in runs:
            far = replay(values, names, every, args.keep, margin)[TRAIN_ROWS:].mean()
            print(f"  anomaly-free  {label:22s}: FAR {100 * far:5.1f} %", flush=True)
    else:
        print(f"  SKAB anomaly-free not found at {free_csv}: skipped")
    if valve1:
        frame = pl.concat([pl.read_csv(p, separator=";") for p in valve1])
        names = tuple(c for c in frame.columns if c not in ("datetime", "anomaly", "changepoint"))
        values = frame.select(names).to_numpy().astype(np.float64)
        fault = frame["anomaly"].to_numpy() > 0.5
        edges = np.diff(np.r_[0, fault.astype(np.int8), 0])
        heads, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        later = np.arange(len(values)) >= TRAIN_ROWS
        for label, every, margin in runs:
            alarm = replay(values, names, every, args.keep, margin)
            seen = sum(bool(alarm[h:e].any()) for h, e in zip(heads, ends, strict=True))
            print(
                f"  valve1 session {label:21s}: FAR {100 * alarm[later & ~fault].mean():5.1f} % on later normal rows, "
                f"{100 * alarm[fault].mean():5.1f} % of fault rows, {seen} of {len(heads)} faults seen",
                flush=True,
            )
    else:
        print(f"  SKAB valve1 not found under {SKAB}: skipped")
    print(f"Run time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
