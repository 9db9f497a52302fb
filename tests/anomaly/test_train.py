"""``sentinel anomaly train`` against a real PostgreSQL: rows built from stored readings as the live engine builds
them, fitted through the same code path as ``fit``; the period bounds and bad input are honoured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from sentinel.engine.anomaly import FitSettings, fit_model, load_model
from sentinel.engine.anomaly.commands import anomaly_app
from sentinel.engine.anomaly.history import Readings, feature_rows
from sentinel.engine.anomaly.versions import list_versions, rollback
from sentinel.errors import DatasetError

runner = CliRunner()
START = datetime(2026, 11, 1, tzinfo=UTC)
FEATURES = ["dc_dp_pa", "dc_inlet_temp_c", "hopper_temp_c"]


def test_feature_rows_hold_the_latest_value_of_each_metric_per_device() -> None:
    readings = Readings(
        np.array([1, 1, 2, 1, 2, 1, 2], dtype=np.int64),
        ["dc_dp_pa", "hopper_temp_c", "dc_dp_pa", "dc_dp_pa", "hopper_temp_c", "spark_count", "dc_dp_pa"],
        np.array([0, 0, 5, 10, 6, 11, 7], dtype=np.int64),
        np.array([800.0, 40.0, 700.0, 810.0, 30.0, 1.0, 710.0]),
    )
    rows = feature_rows(readings, ["dc_dp_pa", "hopper_temp_c"])
    # Device 1: (800, 40) once both are known, then (810, 40); device 2: (700, 30), then (710, 30).
    np.testing.assert_array_equal(rows, [[800, 40], [810, 40], [700, 30], [710, 30]])
    with pytest.raises(DatasetError, match="unknown metric"):
        feature_rows(readings, ["no_such_metric"])


def store_history(conninfo: str) -> Readings:
    """Two dust collectors and one wet collector, 10 s readings for two hours; returns what falls in hour one."""
    rng = np.random.default_rng(3)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("INSERT INTO sites (site_id, name, township, sector) VALUES ('s1', 'Plant', 'T', 'dust')")
        for device, cls in (("dc-1", "dust_collector"), ("dc-2", "dust_collector"), ("wc-1", "wet_collector")):
            conn.execute("INSERT INTO devices (device, site_id, device_class) VALUES (%s, 's1', %s)", (device, cls))
        for metric in [*FEATURES, "wet_flow_m3h"]:
            conn.execute("INSERT INTO metrics (metric) VALUES (%s)", (metric,))
        ids: dict[str, int] = dict(conn.execute("SELECT device, device_id FROM devices").fetchall())
        metric_ids: dict[str, int] = dict(conn.execute("SELECT metric, metric_id FROM metrics").fetchall())
        rows: list[tuple[datetime, int, int, float]] = []
        device_col: list[int] = []
        metric_col: list[str] = []
        ts_col: list[int] = []
        value_col: list[float] = []
        for step in range(720):
            ts = START + timedelta(seconds=10 * step)
            for device in ("dc-1", "dc-2"):
                for metric, centre in zip(FEATURES, (800.0, 45.0, 40.0), strict=True):
                    value = float(rng.normal(centre, centre * 0.02))
                    rows.append((ts, ids[device], metric_ids[metric], value))
                    if step < 360:
                        device_col.append(ids[device])
                        metric_col.append(metric)
                        ts_col.append(int(ts.timestamp() * 1e6))
                        value_col.append(value)
            rows.append((ts, ids["wc-1"], metric_ids["wet_flow_m3h"], 5.0))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO readings (ts, device_id, metric_id, value) VALUES (%s, %s, %s, %s)", rows)
        kept = Readings(np.array(device_col), metric_col, np.array(ts_col), np.array(value_col))
    return kept


def test_train_from_stored_history(migrated_db: str, tmp_path: Path) -> None:
    first_hour = store_history(migrated_db)
    out = tmp_path / "dc.npz"
    args = ["train", "--class", "dust_collector", "--since", "2026-11-01T00:00", "--until", "2026-11-01T01:00Z"]
    args += ["--out", str(out), "--smoothing", "5"] + [f"--metric={m}" for m in FEATURES]
    result = runner.invoke(anomaly_app, args, env={"SENTINEL_DATABASE_URL": migrated_db})
    assert result.exit_code == 0, result.output
    model = load_model(out)
    assert model.feature_names == tuple(FEATURES)
    assert model.training.first == "2026-11-01T00:00:00+00:00"
    assert model.training.last == "2026-11-01T00:59:50+00:00"
    # The same rows through the same fit: the stored model is what fit_model gives (the second hour is left out).
    expected = fit_model(feature_rows(first_hour, FEATURES), FEATURES, FitSettings(smoothing=5))
    assert model.training.rows == expected.training.rows == 2 * 360 * 3 - 2 * 2
    assert model.limit == pytest.approx(expected.limit, rel=1e-12)
    # Kept as a version with the settings it was fitted with (a refit fits the same way); a second training is the
    # next version, and rollback returns to the first.
    (first,) = list_versions(out)
    assert (first.note, first.live, first.fit is not None and first.fit["smoothing"]) == ("train", True, 5)
    again = runner.invoke(anomaly_app, [*args, "--smoothing", "7"], env={"SENTINEL_DATABASE_URL": migrated_db})
    assert again.exit_code == 0, again.output
    assert "(version 2)" in again.output
    assert load_model(out).smoothing == 7
    assert rollback(out).number == 1
    assert load_model(out).smoothing == 5


def test_train_refuses_bad_input(migrated_db: str, tmp_path: Path) -> None:
    store_history(migrated_db)
    env = {"SENTINEL_DATABASE_URL": migrated_db}
    base = ["train", "--out", str(tmp_path / "m.npz")]
    unknown = runner.invoke(anomaly_app, [*base, "--class", "boiler", "--since", "2026-11-01"], env=env)
    assert unknown.exit_code != 0
    assert "no device class 'boiler'" in unknown.output
    bad_time = runner.invoke(anomaly_app, [*base, "--class", "dust_collector", "--since", "yesterday"], env=env)
    assert bad_time.exit_code != 0
    assert "not an ISO 8601 time" in bad_time.output
    empty = runner.invoke(anomaly_app, [*base, "--class", "dust_collector", "--since", "2027-01-01"], env=env)
    assert isinstance(empty.exception, DatasetError)
    assert "no stored readings" in str(empty.exception)
    assert not (tmp_path / "m.npz").exists()
