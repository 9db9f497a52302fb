"""Refits against a real PostgreSQL: recent readings without the rule's alert periods, the current model's settings,
refusals that keep the current file, and ``serve`` running one on its schedule."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from sentinel.engine.anomaly import FitSettings, fit_model, load_model, save_model
from sentinel.engine.anomaly.commands import anomaly_app
from sentinel.engine.anomaly.pca import PcaDetector
from sentinel.engine.anomaly.refit import RefitConfig, refit_rule
from sentinel.engine.anomaly.versions import list_versions, live_version
from sentinel.engine.loader import load_rules
from sentinel.engine.model import Rule
from sentinel.errors import RefitRefused
from sentinel.testing.service import start_service

runner = CliRunner()
RULE = "dust.collector_anomaly"
FEATURES = ("dc_dp_pa", "dc_inlet_temp_c", "hopper_temp_c")
CENTRES = (800.0, 45.0, 40.0)
NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)
CONFIG = RefitConfig(window=timedelta(hours=3), min_rows=100, keep=10)


def dust_rule() -> Rule:
    return next(r for r in load_rules().rules if r.id == RULE)


def store_recent(conninfo: str, end: datetime, wild: dict[str, tuple[int, int]]) -> dict[str, int]:
    """Two dust collectors reporting every 10 s for the two hours before ``end``; ``wild`` gives a device the
    minutes (before ``end``) during which its readings are five times off. Returns the device ids."""
    rng = np.random.default_rng(11)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("INSERT INTO sites (site_id, name, township, sector) VALUES ('s1', 'Plant', 'T', 'dust')")
        for device in ("dc-1", "dc-2"):
            conn.execute(
                "INSERT INTO devices (device, site_id, device_class) VALUES (%s, 's1', 'dust_collector')", (device,)
            )
        for metric in FEATURES:
            conn.execute("INSERT INTO metrics (metric) VALUES (%s) ON CONFLICT DO NOTHING", (metric,))
        ids: dict[str, int] = dict(conn.execute("SELECT device, device_id FROM devices").fetchall())
        metric_ids: dict[str, int] = dict(conn.execute("SELECT metric, metric_id FROM metrics").fetchall())
        rows = []
        for step in range(720):
            ts = end - timedelta(seconds=7200 - 10 * step)
            minutes_before = (end - ts).total_seconds() / 60
            for device in ("dc-1", "dc-2"):
                lo_hi = wild.get(device)
                factor = 5.0 if lo_hi and lo_hi[1] <= minutes_before <= lo_hi[0] else 1.0
                for metric, centre in zip(FEATURES, CENTRES, strict=True):
                    value = float(rng.normal(centre, centre * 0.02)) * factor
                    rows.append((ts, ids[device], metric_ids[metric], value))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO readings (ts, device_id, metric_id, value) VALUES (%s, %s, %s, %s)", rows)
    return ids


def add_alert(conninfo: str, device_id: int, raised: datetime, cleared: datetime | None, rule: str = RULE) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO alerts (alert_key, rule_id, subject, device_id, site_id, alert_class, grade, state,
                                   raised_at, cleared_at)
               VALUES (%s, %s, %s, %s, 's1', 'warning', 'blue', %s, %s, %s)""",
            (f"{rule}|{device_id}|{raised.isoformat()}", rule, str(device_id), device_id,
             "normal" if cleared else "active_unack", raised, cleared),
        )  # fmt: skip


def trained_model(models: Path) -> Path:
    """The model `sentinel anomaly train` would have written: normal rows, smoothing 5."""
    rng = np.random.default_rng(5)
    rows = np.column_stack([rng.normal(c, c * 0.02, 1000) for c in CENTRES])
    models.mkdir(exist_ok=True)
    path = models / "dust_collector.npz"
    save_model(fit_model(rows, FEATURES, FitSettings(smoothing=5)), path)
    return path


def test_refit_leaves_out_the_rules_alert_periods(migrated_db: str, tmp_path: Path) -> None:
    # dc-1 was wild 60..40 minutes ago under a closed alert; dc-2 has been wild for 15 minutes under an open one.
    ids = store_recent(migrated_db, NOW, {"dc-1": (60, 40), "dc-2": (15, 0)})
    add_alert(migrated_db, ids["dc-1"], NOW - timedelta(minutes=59), NOW - timedelta(minutes=41))
    add_alert(migrated_db, ids["dc-2"], NOW - timedelta(minutes=14), None)
    add_alert(migrated_db, ids["dc-1"], NOW - timedelta(minutes=100), NOW - timedelta(minutes=90), rule="dust.other")
    live = trained_model(tmp_path / "models")
    with psycopg.connect(migrated_db) as conn:
        result = refit_rule(conn, dust_rule(), tmp_path / "models", CONFIG, now=NOW)
    model = load_model(live)
    assert isinstance(model.detector, PcaDetector)
    # Centre of the refitted model: the wild readings (five times the level) would pull dc_dp_pa's mean to ~950.
    assert model.detector.mean[0] == pytest.approx(800.0, abs=10.0)
    assert model.detector.mean[1] == pytest.approx(45.0, abs=1.0)
    # Padded a minute each side: dc-1 60..40 minutes ago (121 steps), dc-2 from 15 minutes ago (90 steps).
    assert result.alert_periods == 2
    assert result.excluded_readings == (121 + 90) * 3
    assert model.training.rows == result.rows
    assert model.smoothing == 5  # fitted as the current model was
    assert [(v.note, v.live) for v in list_versions(live)] == [("adopted", False), ("refit", True)]
    assert result.version.fit is not None
    assert result.version.fit["smoothing"] == 5


def test_refit_refuses_with_too_few_normal_rows_and_keeps_the_model(migrated_db: str, tmp_path: Path) -> None:
    ids = store_recent(migrated_db, NOW, {})
    models = tmp_path / "models"
    live = trained_model(models)
    before = live.read_bytes()
    rule = dust_rule()
    with psycopg.connect(migrated_db) as conn:
        add_alert(migrated_db, ids["dc-1"], NOW - timedelta(hours=4), None)
        add_alert(migrated_db, ids["dc-2"], NOW - timedelta(hours=4), NOW)
        with pytest.raises(RefitRefused, match=r"正常数据不足.*0 rows of normal operation.*keeping the current model"):
            refit_rule(conn, rule, models, CONFIG, now=NOW)
        with pytest.raises(RefitRefused, match="at least 100000"):
            refit_rule(conn, rule, models, RefitConfig(timedelta(hours=3), 100_000, 10), now=NOW + timedelta(hours=1))
    assert live.read_bytes() == before
    assert live_version(live) is None
    live.unlink()
    with psycopg.connect(migrated_db) as conn, pytest.raises(RefitRefused, match="no current model to refit"):
        refit_rule(conn, rule, models, CONFIG, now=NOW)
    assert not live.exists()


def test_refit_command(migrated_db: str, tmp_path: Path) -> None:
    store_recent(migrated_db, datetime.now(UTC), {})
    models = tmp_path / "models"
    live = trained_model(models)
    env = {"SENTINEL_DATABASE_URL": migrated_db, "SENTINEL_ANOMALY_MODELS_DIR": str(models)}
    env |= {"SENTINEL_ANOMALY_REFIT_MIN_ROWS": "100"}
    done = runner.invoke(anomaly_app, ["refit", "--rule", RULE], env=env)
    assert done.exit_code == 0, done.output
    assert "version 2" in done.output
    assert load_model(live).training.rows > 4000
    unknown = runner.invoke(anomaly_app, ["refit", "--rule", "dust.nope"], env=env)
    assert unknown.exit_code != 0
    assert "no rule 'dust.nope'" in unknown.output
    assert RULE in unknown.output  # the anomaly rules there are
    no_dir = runner.invoke(anomaly_app, ["refit", "--rule", RULE], env={"SENTINEL_DATABASE_URL": migrated_db})
    assert no_dir.exit_code != 0
    assert "anomaly_models_dir is not set" in no_dir.output


def refitted(live: Path) -> bool:
    version = live_version(live)
    return version is not None and version.note == "refit"


def test_serve_refits_on_its_schedule(migrated_db: str, tmp_path: Path) -> None:
    store_recent(migrated_db, datetime.now(UTC), {})
    models = tmp_path / "models"
    live = trained_model(models)
    settings = {
        "anomaly_models_dir": models,
        "anomaly_refit_every_s": 0.2,
        "anomaly_refit_window_s": 3 * 3600.0,
        "anomaly_refit_min_rows": 100,
    }
    service = start_service(migrated_db, tmp_path / "spool", settings=settings)
    try:
        assert "anomaly-refit" in service.sentinel.running()
        deadline = time.monotonic() + 60
        while not refitted(live) and time.monotonic() < deadline:  # a condition, not a time: fails after a minute
            time.sleep(0.1)
    finally:
        service.stop()
    assert refitted(live)
    assert load_model(live).training.rows > 4000  # two hours of two collectors, not the 1000 rows it was trained on
