"""The offline commands end to end on small generated CSV files, through the typer app."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from sentinel.engine.anomaly import load_model
from sentinel.engine.anomaly.commands import anomaly_app
from sentinel.engine.anomaly.dataset import find_time_column, read_frame
from sentinel.errors import DatasetError, ModelError
from tests.anomaly.synthetic import NAMES, normal_rows

runner = CliRunner()


def write_csv(path: Path, rows: np.ndarray, separator: str = ";", label: np.ndarray | None = None) -> None:
    times = [f"2026-01-01 00:{i // 60:02d}:{i % 60:02d}" for i in range(len(rows))]
    columns: dict[str, object] = {"datetime": times} | {name: rows[:, j] for j, name in enumerate(NAMES)}
    if label is not None:
        columns["anomaly"] = label
    pl.DataFrame(columns).write_csv(path, separator=separator)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    train = normal_rows(600, seed=41)
    test = np.concatenate([normal_rows(200, seed=42), normal_rows(100, seed=43) + 4.0, normal_rows(100, seed=44)])
    label = np.r_[np.zeros(200), np.ones(100), np.zeros(100)]
    paths = {"train": tmp_path / "train.csv", "test": tmp_path / "test.csv", "model": tmp_path / "m.npz"}
    write_csv(paths["train"], train, label=np.zeros(len(train)))
    write_csv(paths["test"], test, label=label)
    paths["out"] = tmp_path / "scores.csv"
    return paths


@pytest.mark.parametrize("detector", ["pca", "iforest", "robust_z"])
def test_fit_then_score_flags_the_shifted_rows(files: dict[str, Path], detector: str) -> None:
    fitted = runner.invoke(
        anomaly_app,
        ["fit", "--csv", str(files["train"]), "--out", str(files["model"]), "--sep", ";",
         "--detector", detector, "--exclude", "anomaly", "--smoothing", "10", "--quantile", "0.99"],
    )  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    model = load_model(files["model"])
    assert model.kind == detector
    assert model.feature_names == NAMES, "the time column and the excluded label must not become features"
    assert model.training.rows == 600
    assert model.training.first == "2026-01-01 00:00:00"
    scored = runner.invoke(
        anomaly_app,
        ["score", "--model", str(files["model"]), "--csv", str(files["test"]), "--out", str(files["out"]),
         "--sep", ";"],
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    out = pl.read_csv(files["out"], separator=";")
    assert out.columns == ["datetime", "statistic", "score", "alarm"]
    assert out.height == 400
    alarm = out["alarm"].to_numpy()
    assert set(np.unique(alarm)) <= {0, 1}
    assert alarm[200:300].mean() > 0.9
    assert alarm[:200].mean() < 0.05
    # The written scores are the library's scores for the same rows.
    test = pl.read_csv(files["test"], separator=";").select(NAMES).to_numpy()
    np.testing.assert_allclose(out["score"].to_numpy(), model.score(test).score, rtol=1e-12)


def test_score_refuses_a_csv_without_the_model_features(files: dict[str, Path], tmp_path: Path) -> None:
    runner.invoke(anomaly_app, ["fit", "--csv", str(files["train"]), "--out", str(files["model"]), "--sep", ";",
                                "--exclude", "anomaly"])  # fmt: skip
    narrow = tmp_path / "narrow.csv"
    pl.read_csv(files["test"], separator=";").drop("flow").write_csv(narrow, separator=";")
    result = runner.invoke(
        anomaly_app, ["score", "--model", str(files["model"]), "--csv", str(narrow), "--out", str(files["out"]),
                      "--sep", ";"],
    )  # fmt: skip
    assert isinstance(result.exception, DatasetError)
    assert "'flow'" in str(result.exception)


def test_bad_value_is_reported_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("datetime,a,b\nt0,1.0,2.0\nt1,1.5,oops\nt2,1.2,2.1\n")
    result = runner.invoke(anomaly_app, ["fit", "--csv", str(path), "--out", str(tmp_path / "m.npz")])
    assert isinstance(result.exception, DatasetError)
    assert "line 3, column 'b'" in str(result.exception)


def test_missing_time_column_is_explained(files: dict[str, Path]) -> None:
    result = runner.invoke(anomaly_app, ["fit", "--csv", str(files["train"]), "--out", str(files["model"]),
                                         "--sep", ";", "--time-column", "ts"])  # fmt: skip
    assert isinstance(result.exception, DatasetError)
    assert "no time column 'ts'" in str(result.exception)


def test_score_with_a_corrupt_model_is_a_model_error(files: dict[str, Path]) -> None:
    files["model"].write_bytes(b"garbage")
    result = runner.invoke(anomaly_app, ["score", "--model", str(files["model"]), "--csv", str(files["test"]),
                                         "--out", str(files["out"]), "--sep", ";"])  # fmt: skip
    assert isinstance(result.exception, ModelError)
    assert not files["out"].exists()


def test_unknown_detector_is_a_usage_error(files: dict[str, Path]) -> None:
    result = runner.invoke(anomaly_app, ["fit", "--csv", str(files["train"]), "--out", str(files["model"]),
                                         "--detector", "magic"])  # fmt: skip
    assert result.exit_code == 2
    assert "--detector" in result.output


def _frame(path: Path, columns: dict[str, object]) -> Path:
    pl.DataFrame(columns).write_csv(path)
    return path


@pytest.mark.parametrize("name", ["timestamp", "datetime", "time", "Timestamp"])
def test_time_column_is_found_by_its_name(tmp_path: Path, name: str) -> None:
    rows = normal_rows(200, seed=3)
    times = [f"2026-01-01 00:{i // 60:02d}:{i % 60:02d}" for i in range(200)]
    path = _frame(tmp_path / "t.csv", {"value": rows[:, 0], name: times, "other": rows[:, 1]})
    assert find_time_column(read_frame(path), path) == name
    result = runner.invoke(anomaly_app, ["fit", "--csv", str(path), "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 0, result.output
    assert load_model(tmp_path / "m.npz").feature_names == ("value", "other")


def test_a_first_column_of_times_is_the_time_column(tmp_path: Path) -> None:
    rows = normal_rows(200, seed=4)
    times = [f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z" for i in range(200)]
    path = _frame(tmp_path / "t.csv", {"when": times, "a": rows[:, 0], "b": rows[:, 1]})
    model_path, out = tmp_path / "m.npz", tmp_path / "s.csv"
    assert runner.invoke(anomaly_app, ["fit", "--csv", str(path), "--out", str(model_path)]).exit_code == 0
    result = runner.invoke(anomaly_app, ["score", "--model", str(model_path), "--csv", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pl.read_csv(out).columns == ["when", "statistic", "score", "alarm"]


def test_no_or_two_time_columns_is_an_error_naming_the_columns(tmp_path: Path) -> None:
    rows = normal_rows(50, seed=5)
    none = _frame(tmp_path / "none.csv", {"a": rows[:, 0], "b": rows[:, 1]})
    with pytest.raises(DatasetError, match=r"no time column found .*columns: 'a', 'b'.*--time-column ''"):
        find_time_column(read_frame(none), none)
    times = [f"2026-01-01 00:00:{i:02d}" for i in range(50)]
    two = _frame(tmp_path / "two.csv", {"time": times, "timestamp": times, "a": rows[:, 0]})
    with pytest.raises(DatasetError, match=r"more than one time column \('time', 'timestamp'"):
        find_time_column(read_frame(two), two)
    text = _frame(tmp_path / "text.csv", {"site": ["north"] * 50, "a": rows[:, 0]})
    result = runner.invoke(anomaly_app, ["fit", "--csv", str(text), "--out", str(tmp_path / "m.npz")])
    assert result.exit_code != 0
    # Given '' the file has no time column: every column is a feature.
    command = ["fit", "--csv", str(none), "--out", str(tmp_path / "m.npz"), "--time-column", ""]
    result = runner.invoke(anomaly_app, command)
    assert result.exit_code == 0, result.output


def test_limit_folds_option_reaches_the_fit(files: dict[str, Path], tmp_path: Path) -> None:
    """`--limit-folds 0` gives the in-sample limit, the default the held-back one (the library's, same rows)."""
    from sentinel.engine.anomaly import FitSettings, fit_model

    train = pl.read_csv(files["train"], separator=";").select(NAMES).to_numpy()
    for extra, settings in (([], FitSettings()), (["--limit-folds", "0"], FitSettings(limit_folds=0))):
        out = tmp_path / f"m{len(extra)}.npz"
        result = runner.invoke(
            anomaly_app,
            ["fit", "--csv", str(files["train"]), "--out", str(out), "--sep", ";", "--exclude", "anomaly", *extra],
        )
        assert result.exit_code == 0, result.output
        assert load_model(out).limit == pytest.approx(fit_model(train, NAMES, settings).limit, rel=1e-12)
    assert load_model(tmp_path / "m0.npz").limit >= load_model(tmp_path / "m2.npz").limit
    bad = runner.invoke(anomaly_app, ["fit", "--csv", str(files["train"]), "--out", str(tmp_path / "x.npz"),
                                      "--sep", ";", "--limit-folds", "-1"])  # fmt: skip
    assert bad.exit_code == 2
    assert "limit_folds" in bad.output


def test_one_sensor_sigma_option_reaches_the_fit(tmp_path: Path) -> None:
    """A univariate file (NAB's layout: timestamp, value) gets the 3-sigma chart by default; the option sets
    sigma, 0 gives the quantile limit of several sensors; a negative sigma is a usage error."""
    values = np.random.default_rng(3).gamma(2.0, size=500)
    times = [f"2026-01-01 {i // 60:02d}:{i % 60:02d}:00" for i in range(len(values))]
    csv = tmp_path / "one.csv"
    pl.DataFrame({"timestamp": times, "value": values}).write_csv(csv)
    limits = {}
    for sigma in ("3", "4", "0"):
        out = tmp_path / f"m{sigma}.npz"
        result = runner.invoke(anomaly_app, ["fit", "--csv", str(csv), "--out", str(out), "--one-sensor-sigma", sigma])
        assert result.exit_code == 0, result.output
        model = load_model(out)
        limits[sigma] = (model.limit * model.detector.t2_reference, model.smoothing)  # type: ignore[attr-defined]
    assert limits["3"] == (pytest.approx(9.0), 1)
    assert limits["4"] == (pytest.approx(16.0), 1)
    assert limits["0"][1] == 10
    bad = runner.invoke(anomaly_app, ["fit", "--csv", str(csv), "--out", str(tmp_path / "x.npz"),
                                      "--one-sensor-sigma", "-1"])  # fmt: skip
    assert bad.exit_code == 2
    assert "one_sensor_sigma" in bad.output
