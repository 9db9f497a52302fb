"""A wrong or unreachable database URL, or a bad setting, gives one clear line naming the setting, and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.errors import ConfigError
from sentinel.settings import load_settings
from sentinel.testing.broker import free_port


def _run(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "sentinel", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("postgresql://postgres@127.0.0.1:{free_port}/sentinel", "Connection refused"),
        ("mysql://root@localhost/sentinel", "expected a postgresql:// URL"),
        ("postgresql://postgres@127.0.0.1:notaport/x", 'invalid integer value "notaport"'),
    ],
)
def test_bad_database_url_is_one_line_and_exit_2(url: str, cause: str) -> None:
    # The free port is picked when the test runs: in the test's id it would differ between xdist workers.
    url = url.replace("{free_port}", str(free_port()))
    result = _run({"SENTINEL_DATABASE_URL": url}, "db", "upgrade")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sentinel: SENTINEL_DATABASE_URL: ")
    assert cause in lines[0]


def test_missing_database_is_named(db_url: str) -> None:
    url = db_url.replace("dbname=", "dbname=nosuch_") if "dbname=" in db_url else db_url + "_nosuch"
    result = _run({"SENTINEL_DATABASE_URL": url}, "db", "status")
    assert result.returncode == 2
    assert "SENTINEL_DATABASE_URL" in result.stderr
    assert "does not exist" in result.stderr


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_HTTP_PORT", "eighty")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.setting == "SENTINEL_HTTP_PORT"


def test_refits_without_a_models_folder_are_refused_naming_both_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_ANOMALY_REFIT_EVERY_S", "1800")
    monkeypatch.delenv("SENTINEL_ANOMALY_MODELS_DIR", raising=False)
    with pytest.raises(ConfigError, match=r"SENTINEL_ANOMALY_REFIT_EVERY_S.*SENTINEL_ANOMALY_MODELS_DIR"):
        load_settings()
    monkeypatch.setenv("SENTINEL_ANOMALY_MODELS_DIR", "/var/lib/sentinel/models")
    assert load_settings().anomaly_refit_every_s == 1800


def test_toml_file_and_environment_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "sentinel.toml"
    config.write_text("http_port = 9000\nlateness_s = 60\n")
    monkeypatch.setenv("SENTINEL_LATENESS_S", "120")
    settings = load_settings(config)
    assert (settings.http_port, settings.lateness_s) == (9000, 120.0)


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "sentinel.toml"
    config.write_text("htp_port = 9000\n")
    with pytest.raises(ConfigError, match="htp_port"):
        load_settings(config)
