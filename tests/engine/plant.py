"""A test plant: the shipped packs, named devices, readings written as (device, metric, seconds, value).

Every batch goes through both the vectorised engine and the reference evaluator and they must agree; the
scenario tests then assert on what the engine emitted.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from sentinel.engine.devices import DeviceSpec
from sentinel.engine.engine import Engine
from sentinel.engine.loader import load_rules
from sentinel.engine.reference import ReferenceEngine
from sentinel.engine.transitions import Transition

T0 = 1_700_000_000_000_000  # device time origin, UTC epoch µs
Row = tuple[str, str, float, float]


def at(seconds: float) -> int:
    return T0 + round(seconds * 1e6)


class Plant:
    def __init__(
        self,
        devices: list[DeviceSpec],
        lateness_s: float = 300.0,
        site_overrides: dict[str, dict[str, float]] | None = None,
    ) -> None:
        rules = load_rules()
        self.engine = Engine(rules, devices, site_overrides, lateness_s)
        self.reference = ReferenceEngine(rules, devices, site_overrides, lateness_s)
        self.seq: dict[str, int] = defaultdict(int)
        self.emitted: list[Transition] = []

    def feed(self, rows: list[Row]) -> list[Transition]:
        """One micro-batch, in the order given."""
        seqs = []
        for device, *_ in rows:
            self.seq[device] += 1
            seqs.append(self.seq[device])
        cols = (
            np.array([self.engine.device_index(r[0]) for r in rows], dtype=np.int32),
            np.array([self.engine.metric_index(r[1]) for r in rows], dtype=np.int16),
            np.array([at(r[2]) for r in rows], dtype=np.int64),
            np.array([r[3] for r in rows], dtype=np.float64),
            np.array(seqs, dtype=np.int64),
        )
        got = self.engine.process(*cols).records()
        assert got == self.reference.process(*cols)
        self.emitted += got
        return got

    def tick(self, seconds: float) -> list[Transition]:
        got = self.engine.tick(at(seconds)).records()
        assert got == self.reference.tick(at(seconds))
        self.emitted += got
        return got

    def of(self, rule_id: str) -> list[tuple[str, str, str, float]]:
        """(move, to grade, device, seconds) of one rule's transitions so far."""
        return [(t.move, t.to_grade, t.subject, (t.ts_us - T0) / 1e6) for t in self.emitted if t.rule_id == rule_id]


def normal_rows(devices: dict[str, dict[str, Callable[[float], float]]], seconds: float, every: float) -> list[Row]:
    """Readings of every metric of every device at a steady interval, from value functions of time."""
    rows = []
    for k in range(int(seconds / every) + 1):
        t = k * every
        for device, metrics in devices.items():
            rows += [(device, metric, t, f(t)) for metric, f in metrics.items()]
    return rows


def wobble(base: float, amplitude: float, period_s: float = 600.0) -> Callable[[float], float]:
    """A slow, never-constant drift around ``base`` (a real sensor is never perfectly still)."""
    return lambda t: base + amplitude * math.sin(2 * math.pi * t / period_s) + 1e-6 * base * (t % 7)


def const(value: float) -> Callable[[float], float]:
    return lambda t: value
