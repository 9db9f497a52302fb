"""State carried across batches: adding devices keeps it, a snapshot restores it, bad input is refused clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentinel.engine.catalog import METRIC_INDEX
from sentinel.engine.devices import DeviceSpec
from sentinel.engine.engine import Engine
from sentinel.engine.reference import ReferenceEngine
from sentinel.errors import ConfigError, UnknownDevice
from tests.engine.packs import KINDS, kind_rules, probes

T0 = 1_700_000_000_000_000
TEMP, SMOKE, MINUTES = METRIC_INDEX["port_temp_c"], METRIC_INDEX["smoke"], METRIC_INDEX["charge_minutes"]


def batch(rows: list[tuple[int, int, float, float]]) -> tuple[np.ndarray, ...]:
    return (
        np.array([r[0] for r in rows], dtype=np.int32),
        np.array([r[1] for r in rows], dtype=np.int16),
        np.array([T0 + round(r[2] * 1e6) for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows], dtype=np.float64),
        np.arange(len(rows), dtype=np.int64),
    )


def test_adding_devices_keeps_open_alerts_and_runs_and_new_devices_join(tmp_path: Path) -> None:
    rules = kind_rules(tmp_path, KINDS)
    fast, slow = Engine(rules, probes(2)), ReferenceEngine(rules, probes(2))
    first = batch([(0, TEMP, 0, 72.0), (1, TEMP, 0, 61.0), (1, SMOKE, 0, 1.0), (0, TEMP, 1, 72.0)])
    assert fast.process(*first).records() == slow.process(*first)
    newcomer = [DeviceSpec("p9", "probe", "s0", "test", 1.0, {"power_setpoint": 80.0, "power_allowed": 40.0})]
    fast.add_devices(newcomer)
    slow.add_devices(newcomer)
    second = batch([(0, TEMP, 2, 72.0), (1, TEMP, 2, 62.0), (2, MINUTES, 2, 60.0), (2, TEMP, 2, 75.0)])
    got = fast.process(*second).records()
    assert got == slow.process(*second)
    # p0 was already yellow: no second raise; p9 raises on its own; p1's composite run (since t=0) reaches 2 s.
    assert [(t.rule_id, t.subject, t.move, t.to_grade) for t in got] == [
        ("t.threshold", "p9", "raise", "yellow"),
        ("t.composite", "p1", "raise", "orange"),
    ]


def test_snapshot_restores_exactly_and_refuses_another_engine(tmp_path: Path) -> None:
    rules = kind_rules(tmp_path, KINDS)
    engine = Engine(rules, probes(2))
    engine.process(*batch([(0, TEMP, 0, 61.0), (0, SMOKE, 0, 1.0)]))
    blob = engine.snapshot()
    restored = Engine(rules, probes(2))
    restored.restore(blob)
    later = batch([(0, TEMP, 2, 61.0), (0, TEMP, 3, 50.0)])
    assert restored.process(*later).records() == engine.process(*later).records()
    assert engine.snapshot() == restored.snapshot()
    with pytest.raises(ConfigError, match="other devices or rules"):
        Engine(rules, probes(3)).restore(blob)


def test_state_bytes_are_small_per_series(tmp_path: Path) -> None:
    engine = Engine(kind_rules(tmp_path, KINDS), probes(100))
    assert engine.table.n_series == 600
    assert engine.state_nbytes() / engine.table.n_series < 100


def test_bad_input_is_refused_with_where_and_what(tmp_path: Path) -> None:
    rules = kind_rules(tmp_path, KINDS)
    engine = Engine(rules, probes(1))
    with pytest.raises(UnknownDevice, match="device index 5 is not registered"):
        engine.process(*batch([(5, TEMP, 0, 1.0)]))
    with pytest.raises(UnknownDevice, match="'nope'"):
        engine.device_index("nope")
    with pytest.raises(ConfigError, match=r"device 'x'.*device class 'kettle'"):
        engine.add_devices([DeviceSpec("x", "kettle", "s", "test")])
    with pytest.raises(ConfigError, match=r"attribute 'power_setpoint' is required by rule t\.setpoint"):
        engine.add_devices([DeviceSpec("y", "probe", "s", "test")])
    assert engine.device_ids == ["p0"]  # a refused batch of devices leaves the engine as it was
    counted = engine.process(*batch([(0, TEMP, 0, float("nan")), (0, METRIC_INDEX["cw_pressure_mpa"], 0, 1.0)]))
    assert len(counted) == 0
    assert (engine.stats["invalid"], engine.stats["unmapped"]) == (1, 1)
