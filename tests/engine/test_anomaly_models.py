"""Anomaly model files in the engine: loaded at start, reloaded on change, bad files refused while every other
rule keeps running."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sentinel.engine.anomaly import FitSettings, fit_model, save_model
from sentinel.engine.catalog import METRIC_INDEX
from sentinel.engine.engine import Engine
from sentinel.engine.loader import check_rules
from sentinel.engine.reference import ReferenceEngine
from sentinel.engine.transitions import Transition
from tests.engine.packs import kind_rules, probes

T0 = 1_700_000_000_000_000
RULES = ("t.threshold", "t.anomaly_pca")


def stream(start: int, n: int, temp: float) -> tuple[np.ndarray, ...]:
    """One probe reporting temperature, power and charge minutes every second; ``temp`` is the temperature."""
    metrics = ["port_temp_c", "port_power_w", "charge_minutes"]
    device = np.zeros(3 * n, dtype=np.int32)
    metric = np.array([METRIC_INDEX[m] for m in metrics] * n, dtype=np.int16)
    ts = T0 + np.repeat(np.arange(start, start + n, dtype=np.int64), 3) * 1_000_000
    value = np.tile([temp, 60.0, 50.0], n)
    return device, metric, ts, value, np.arange(start * 3, (start + n) * 3, dtype=np.int64)


def engine_with(models: Path, tmp: Path) -> Engine:
    return Engine(kind_rules(tmp, RULES), probes(1), models_dir=models)


def kinds(out: list[Transition]) -> set[tuple[str, str]]:
    return {(t.rule_id, t.alert_class) for t in out}


def test_good_model_warns_and_threshold_alarms(probe_models: Path, tmp_path: Path) -> None:
    engine = engine_with(probe_models, tmp_path)
    assert engine.model_errors == {}
    quiet, hot = engine.process(*stream(0, 20, 50.0)), engine.process(*stream(20, 20, 65.0))
    assert not quiet.warning().any()
    assert hot.warning().any()
    assert not hot.warning().all()
    out = quiet.records() + hot.records()
    assert kinds(out) == {("t.anomaly_pca", "warning"), ("t.threshold", "alarm")}
    warning = next(t for t in out if t.rule_id == "t.anomaly_pca")
    assert warning.value >= 1.0  # an anomaly transition reports the normalised score


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(b"not a model at all"), "not a readable model file"),
        (lambda p: p.write_bytes(p.read_bytes()[:-40]), "not a readable model file"),
        (lambda p: p.unlink(), "no such model file"),
        (
            lambda p: save_model(
                fit_model(np.random.default_rng(1).normal(size=(50, 2)), ["port_temp_c", "port_power_w"]), p
            ),
            "are not the metrics of rule t.anomaly_pca",
        ),
    ],
    ids=["garbage", "truncated", "missing", "other-features"],
)
def test_bad_model_is_refused_and_thresholds_keep_running(
    damage: Callable[[Path], object], message: str, probe_models: Path, tmp_path: Path
) -> None:
    damage(probe_models / "pca.npz")
    engine = engine_with(probe_models, tmp_path)
    reference = ReferenceEngine(kind_rules(tmp_path, RULES), probes(1), models_dir=probe_models)
    error = engine.model_errors["t.anomaly_pca"]
    assert message in str(error)
    assert "pca.npz" in str(error)
    for batch in (stream(0, 20, 50.0), stream(20, 20, 65.0), stream(40, 5, 40.0)):
        got = engine.process(*batch).records()
        assert got == reference.process(*batch)
        assert all(t.rule_id == "t.threshold" for t in got)
    assert engine.stats["readings"] == 3 * 45


def test_model_file_changes_are_picked_up(probe_models: Path, tmp_path: Path) -> None:
    path = probe_models / "pca.npz"
    good = path.read_bytes()
    path.unlink()
    engine = engine_with(probe_models, tmp_path)
    assert "no such model file" in str(engine.model_errors["t.anomaly_pca"])
    assert engine.process(*stream(0, 20, 65.0)).records()[0].rule_id == "t.threshold"
    # The file appears: loaded at the next batch, warm-up starts, then it warns.
    path.write_bytes(good)
    out = engine.process(*stream(20, 30, 65.0)).records()
    assert engine.model_errors == {}
    assert ("t.anomaly_pca", "warning") in kinds(out)
    # A damaged replacement is refused; the rule keeps the model it has and keeps scoring.
    path.write_bytes(good[: len(good) // 2])
    out = engine.process(*stream(50, 5, 50.0)).records()
    assert "t.anomaly_pca" in engine.model_errors
    assert engine.anomaly.model("t.anomaly_pca") is not None
    assert ("t.anomaly_pca", "warning") in kinds(out)  # back to normal: the warning clears
    # A good new model (a much looser limit) replaces it: the error goes, the limit is the new one.
    loose = fit_model(
        np.random.default_rng(2).normal([50, 60, 50], [50, 50, 50], size=(300, 3)),
        ["port_temp_c", "port_power_w", "charge_minutes"],
        FitSettings("pca", smoothing=3),
    )
    save_model(loose, path)
    engine.process(*stream(55, 1, 50.0))
    current = engine.anomaly.model("t.anomaly_pca")
    assert engine.model_errors == {}
    assert current is not None
    assert current.limit == pytest.approx(loose.limit)


def test_pack_refuses_a_model_path_outside_the_models_directory(tmp_path: Path) -> None:
    pack = tmp_path / "p.yaml"
    pack.write_text(
        "pack: p\ndevice_classes:\n  probe: {metrics: [port_temp_c]}\nrules:\n"
        "  - id: p.a\n    name: {zh: 异常, en: anomaly}\n    kind: anomaly\n    device_classes: [probe]\n"
        "    model: ../elsewhere.npz\n    metrics: [port_temp_c, port_temp_c]\n    source: T\n"
        "    levels:\n      - {grade: blue, at: 1.0, source: T}\n",
        encoding="utf-8",
    )
    _, problems = check_rules(pack)
    text = "\n".join(f"{p.where}: {p.what}" for p in problems)
    assert "p.yaml:9: model '../elsewhere.npz' must be a relative path" in text
    assert "p.yaml:10: an anomaly rule needs distinct metrics" in text


def test_snapshot_windows_restore_only_under_the_same_model(probe_models: Path, tmp_path: Path) -> None:
    engine = engine_with(probe_models, tmp_path)
    engine.process(*stream(0, 20, 50.0))
    blob = engine.snapshot()
    same = engine_with(probe_models, tmp_path)
    same.restore(blob)
    assert same.anomaly.live[1].windows is not None
    assert int(same.anomaly.live[1].windows.seen[0]) == 20 * 3 - 2  # rows scored once all three metrics were known
    save_model(
        fit_model(np.random.default_rng(5).normal(size=(80, 3)), ["port_temp_c", "port_power_w", "charge_minutes"]),
        probe_models / "pca.npz",
    )
    other = engine_with(probe_models, tmp_path)
    other.restore(blob)  # grades and series state come back; the windows of another model do not
    assert other.anomaly.live[1].windows is not None
    assert int(other.anomaly.live[1].windows.seen[0]) == 0
    assert other.series.frontier[0] == engine.series.frontier[0]
