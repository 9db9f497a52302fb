"""``sentinel serve`` as an operator meets it: start lines on stdout, logs configured (JSON when asked), and a port
already in use refused in one line naming the port and the setting, exit 2."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from sentinel import __version__


def _env(db: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env |= {"SENTINEL_DATABASE_URL": db, "SENTINEL_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", **extra}
    return env


def test_serve_prints_its_start_lines_and_logs_as_json(migrated_db: str, tmp_path: Path) -> None:
    env = _env(migrated_db, tmp_path, SENTINEL_HTTP_PORT="0", SENTINEL_LOG_FORMAT="json", SENTINEL_LOG_LEVEL="INFO")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if "SENTINEL_LOG_FORMAT" in line:  # the last start line
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    text = "\n".join(lines)
    assert f"Sentinel {__version__}" in lines[0]
    assert "dialect native" in text
    assert "MQTT broker: none (HTTP ingest only)" in text
    assert "HTTP API: http://127.0.0.1:" in text
    assert "/docs" in text
    assert "/readyz" in text
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert records, "no log records on stderr"
    assert {"ts", "level", "logger", "message"} <= set(records[0])
    assert any(r["logger"] == "sentinel.engine.runner" and r["level"] == "INFO" for r in records), records


def test_a_port_in_use_is_one_line_naming_the_port_and_the_setting(migrated_db: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "sentinel", "serve"],
            env=_env(migrated_db, tmp_path, SENTINEL_HTTP_PORT=str(port)),
            capture_output=True,
            check=False,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"port {port}" in result.stderr
    assert "SENTINEL_HTTP_PORT" in result.stderr
