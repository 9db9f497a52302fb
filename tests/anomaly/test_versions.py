"""Versioned model files: a new model keeps the ones before it, the live file is replaced whole, rollback brings a
kept version back and the running engine reloads it; the CLI lists and rolls back with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sentinel.engine.anomaly import FitSettings, fit_model, load_model, save_model
from sentinel.engine.anomaly.commands import anomaly_app
from sentinel.engine.anomaly.model import AnomalyModel
from sentinel.engine.anomaly.versions import list_versions, live_version, rollback, versions_dir, write_version
from sentinel.engine.engine import Engine
from sentinel.errors import ModelError
from tests.engine.packs import kind_rules, probes

runner = CliRunner()
FEATURES = ["port_temp_c", "port_power_w", "charge_minutes"]


def probe_model(seed: int, temp: float) -> AnomalyModel:
    rng = np.random.default_rng(seed)
    rows = np.column_stack([rng.normal(temp, 5, 400), rng.normal(60, 10, 400), rng.normal(50, 10, 400)])
    return fit_model(rows, FEATURES, FitSettings("pca", smoothing=3, pca_variance=0.7))


def test_write_keeps_the_trained_file_and_rollback_restores_it(probe_models: Path) -> None:
    live = probe_models / "pca.npz"
    trained = live.read_bytes()
    first = write_version(probe_model(1, 50.0), live, keep=10, note="refit", fit={"smoothing": 3})
    second = write_version(probe_model(2, 55.0), live, keep=10, note="refit")
    kept = list_versions(live)
    assert [(v.number, v.note, v.live) for v in kept] == [
        (1, "adopted", False),
        (2, "refit", False),
        (3, "refit", True),
    ]
    assert (first.number, second.number) == (2, 3)
    assert kept[0].path.read_bytes() == trained  # the file `train` wrote is kept before it is replaced
    assert live.read_bytes() == second.path.read_bytes()
    assert kept[1].fit == {"smoothing": 3}
    assert not list(probe_models.glob("*.partial"))
    assert not list(versions_dir(live).glob("*.partial"))

    back = rollback(live)
    assert back.number == 2
    now_live = live_version(live)
    assert now_live is not None
    assert now_live.number == 2
    assert load_model(live).limit == pytest.approx(first.limit)
    assert rollback(live).number == 1
    assert live.read_bytes() == trained
    with pytest.raises(ModelError, match="oldest kept"):
        rollback(live)
    assert rollback(live, to=3).number == 3
    with pytest.raises(ModelError, match="no version 9"):
        rollback(live, to=9)


def test_versions_are_bounded_and_the_live_one_stays(probe_models: Path) -> None:
    live = probe_models / "pca.npz"
    for seed in range(5):
        write_version(probe_model(seed, 50.0 + seed), live, keep=3, note="refit")
    assert [v.number for v in list_versions(live)] == [4, 5, 6]
    rollback(live, to=4)
    write_version(probe_model(9, 51.0), live, keep=3, note="refit")
    # Version 4 was live when 7 was written (it is the one to go back to); the oldest other one went.
    assert [v.number for v in list_versions(live)] == [4, 6, 7]
    assert rollback(live).number == 4
    with pytest.raises(ModelError, match="oldest kept"):  # 4 replaced 3, which is no longer kept
        rollback(live)


def test_rollback_refuses_a_damaged_version(probe_models: Path) -> None:
    live = probe_models / "pca.npz"
    write_version(probe_model(1, 50.0), live, keep=10, note="refit")
    adopted = list_versions(live)[0]
    adopted.path.write_bytes(adopted.path.read_bytes()[:-30])
    before = live.read_bytes()
    with pytest.raises(ModelError):
        rollback(live)
    assert live.read_bytes() == before


def test_engine_reloads_a_rolled_back_model(probe_models: Path, tmp_path: Path) -> None:
    live = probe_models / "pca.npz"
    engine = Engine(kind_rules(tmp_path, ("t.anomaly_pca",)), probes(1), models_dir=probe_models)
    trained = engine.anomaly.model("t.anomaly_pca")
    assert trained is not None
    write_version(probe_model(5, 70.0), live, keep=10, note="refit")
    engine.reload_models()
    refitted = engine.anomaly.model("t.anomaly_pca")
    assert refitted is not None
    assert refitted.limit != trained.limit
    rollback(live)
    engine.reload_models()
    restored = engine.anomaly.model("t.anomaly_pca")
    assert restored is not None
    assert restored is not refitted
    assert restored.limit == pytest.approx(trained.limit)
    assert engine.model_errors == {}


def test_versions_and_rollback_commands(probe_models: Path, tmp_path: Path) -> None:
    live = probe_models / "pca.npz"
    env = {"SENTINEL_ANOMALY_MODELS_DIR": str(probe_models), "SENTINEL_DISPLAY_TZ": "Asia/Shanghai"}
    empty = runner.invoke(anomaly_app, ["versions", "--model", "pca.npz"], env=env)
    assert empty.exit_code == 0, empty.output
    assert "no versions" in empty.output
    model = probe_model(3, 52.0)
    save_model(model, tmp_path / "other.npz")
    write_version(model, live, keep=10, note="refit")
    listed = runner.invoke(anomaly_app, ["versions", "--model", "pca.npz"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "adopted" in listed.output
    assert "2 *" in listed.output
    assert "Asia/Shanghai" in listed.output  # times in the display zone, named under the table
    done = runner.invoke(anomaly_app, ["rollback", "--model", str(live)], env=env)
    assert done.exit_code == 0, done.output
    assert "now holds version 1" in done.output
    bad = runner.invoke(anomaly_app, ["rollback", "--model", str(live), "--to", "7"], env=env)
    assert isinstance(bad.exception, ModelError)
    assert "no version 7" in str(bad.exception)
    missing = runner.invoke(anomaly_app, ["versions", "--model", "nope.npz"], env=env)
    assert missing.exit_code != 0
    assert "no model file nope.npz" in missing.output
    squashed = "".join(missing.output.replace("│", "").split())  # the message wraps in typer's error box
    assert f"norunderanomaly_models_dir{probe_models}" in squashed
