"""What re-sending everything a rewind re-evaluates would cost the alert lifecycle, against today's corrections.

    PYTHONPATH=src python bench/late_corrections.py [--sizes 1000 100000] [--batches 10] [--batch 100000]

The stream of bench/engine.py (random readings, 1 % past an alarm level) with ``--late-rate`` of each batch's
readings delivered with the next batch, so the engine rewinds their devices. Today the engine sends, per rewound
subject, only the re-evaluated transitions that were not sent before, and one move to the grade now where it
differs from the last grade sent (engine/reorder.py). The alternative in issue 14: send every re-evaluated
transition and a "grade now" per subject, and let the lifecycle drop what it has seen by key. The table counts,
on the same run, the transitions sent today (the baseline), the repeats the alternative would add and the
(pass, rule, subject) groups with re-evaluated transitions (an upper bound of its "grade now" transitions), and
the ratio of the two totals: each transition is at least one database lookup in the lifecycle.
It counts by wrapping the rewinder's step that leaves out what was sent (no timing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine as stream_of  # bench/engine.py: the same stream
from sentinel.engine import reorder
from sentinel.engine.engine import Engine
from sentinel.engine.loader import load_rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--late-rate", type=float, default=0.01)
    args = parser.parse_args()
    counts = {"reevaluated": 0, "new": 0, "groups": 0}
    drop_sent = reorder.Rewinder._drop_sent

    def counting(self: reorder.Rewinder, pieces: list[Any], rw: Any, last: dict[Any, int]) -> list[Any]:
        kept = drop_sent(self, pieces, rw, last)
        for key, which in (("reevaluated", pieces), ("new", kept)):
            for p in which:
                mine = rw.sites[p.subject] if self.site_scope[p.rule] else rw.devices[p.subject]
                counts[key] += int(mine.sum())
                if key == "reevaluated":
                    counts["groups"] += len(set(p.subject[mine].tolist()))
        return kept

    reorder.Rewinder._drop_sent = counting  # type: ignore[method-assign]
    print(f"{args.batches} batches of {args.batch:,} readings, {args.late_rate:.0%} of each delivered a batch late")
    print(
        f"{'series':>9} {'late':>8} {'rewinds':>8} {'sent today':>11} {'+ repeats':>10} {'+ grade now':>12} "
        f"{'ratio':>6}"
    )
    rules = load_rules()
    classes = {name: c.metrics for name, c in rules.classes.items()}
    for size in args.sizes:
        counts.update(reevaluated=0, new=0, groups=0)
        specs = stream_of.devices_for(size, classes)
        engine = Engine(rules, specs)
        rng, late_rng = np.random.default_rng(7), np.random.default_rng(11)
        span = 2_000_000
        carry = None
        sent = 0
        for i in range(args.batches):
            cols = stream_of.stream(engine, args.batch, rng, stream_of.T0 + i * span, span)
            held = late_rng.random(len(cols[0])) < args.late_rate
            now = stream_of.head(cols, len(cols[0]), ~held)
            if carry is not None:
                now = stream_of.join(now, carry)
            carry = stream_of.head(cols, len(cols[0]), held)
            sent += len(engine.process(*now))
        repeats = counts["reevaluated"] - counts["new"]
        total = sent + repeats + counts["groups"]
        print(
            f"{size:>9,} {engine.stats['late']:>8,} {engine.stats['rewinds']:>8,} {sent:>11,} {repeats:>10,} "
            f"{counts['groups']:>12,} {total / sent:>6.2f}",
            flush=True,
        )
    print(
        "sent today: transitions the engine sends (baseline); + repeats: re-evaluated transitions already sent, which"
        " the alternative would send again; + grade now: at most one per (pass, rule, subject) with re-evaluated"
        " transitions; ratio = (sent today + repeats + grade now) / sent today."
    )


if __name__ == "__main__":
    main()
