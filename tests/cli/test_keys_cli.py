"""`sentinel keys list` and `sentinel keys revoke`: a table with Chinese-first headers and display-zone times; a
revoked key is refused by a running Sentinel at its next request (tests/ingest/test_hostile_input.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from sentinel.registry.repository import create_api_key


def _sentinel(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env |= {"SENTINEL_DATABASE_URL": db, "SENTINEL_DISPLAY_TZ": "Asia/Shanghai", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "sentinel", "keys", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_list_then_revoke_then_list(migrated_db: str) -> None:
    with psycopg.connect(migrated_db) as conn:
        create_api_key(conn, "duty-desk-1", "officer")
    listed = _sentinel(migrated_db, "list")
    assert listed.returncode == 0, listed.stderr
    assert "名称 name" in listed.stdout
    assert "角色 role" in listed.stdout
    assert "duty-desk-1" in listed.stdout
    assert "有效 active" in listed.stdout
    assert "CST" in listed.stdout  # created_at shown in Asia/Shanghai
    revoked = _sentinel(migrated_db, "revoke", "duty-desk-1")
    assert revoked.returncode == 0, revoked.stderr
    assert "已吊销 revoked 'duty-desk-1'" in revoked.stdout
    assert "已吊销 revoked" in _sentinel(migrated_db, "list").stdout
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT revoked_at IS NOT NULL FROM api_keys WHERE name = 'duty-desk-1'").fetchone() == (
            True,
        )


def test_revoking_an_unknown_key_names_it_and_exits_2(migrated_db: str) -> None:
    result = _sentinel(migrated_db, "revoke", "nobody")
    assert result.returncode == 2
    assert "no API key named 'nobody'" in result.stderr
