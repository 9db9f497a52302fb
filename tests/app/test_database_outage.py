"""A 20 s database outage under a running service, configured as ``sentinel serve`` runs it and as the headless
demo runs it: both stay up and say so (the API answers 503 with a JSON body, the demo's view says the database is
away), both recover by themselves, and nothing accepted meanwhile is lost."""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from rich.console import Console

from sentinel.app import Sentinel
from sentinel.demo import DemoRun, run_demo
from sentinel.registry.repository import create_api_key, upsert_registry
from sentinel.settings import Settings
from sentinel.store import migrations
from sentinel.store.embedded import EmbeddedPostgres
from sentinel.testing.broker import PrivateMosquitto
from sentinel.testing.registry import small_registry
from sentinel.testing.waiting import wait_until
from sentinel.threaded import SentinelThread
from tests.app.conftest import publish_readings, stored_messages

OUTAGE_S = 20.0


def _status(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    answer = httpx.get(url, headers=headers, timeout=30)
    body = answer.json()
    if not isinstance(body, dict):
        return answer.status_code, "list"
    return answer.status_code, str(body.get("error") or body.get("database") or body.get("status"))


@pytest.mark.slow
def test_serve_configuration_rides_out_a_database_outage(
    own_postgres: tuple[EmbeddedPostgres, str], mosquitto: PrivateMosquitto, prefix: str, tmp_path: Path
) -> None:
    server, conninfo = own_postgres
    migrations.upgrade(conninfo)
    registry = small_registry(prefix)
    with psycopg.connect(conninfo) as conn:
        upsert_registry(conn, registry)
        officer = {"Authorization": f"Bearer {create_api_key(conn, 'outage-officer', 'officer')}"}
    settings = Settings(
        database_url=conninfo,
        mqtt_url=mosquitto.url,
        data_dir=tmp_path,
        http_port=0,
        upkeep_interval_s=1.0,
        webhook_poll_s=0.5,
        engine_tick_s=0.5,
    )
    sentinel = Sentinel.from_settings(settings)
    service = SentinelThread(sentinel).start()
    device = registry.devices[0].id
    answers: list[tuple[int, str]] = []
    try:
        assert sentinel.collector is not None
        service.call(sentinel.collector.connected.wait)
        parts = sentinel.running()
        acked = publish_readings(mosquitto, registry, 1, 10)
        wait_until(lambda: len(stored_messages(conninfo, device)) == 10, "the first readings stored")

        server.stop()
        seq, ends = 11, time.monotonic() + OUTAGE_S
        while time.monotonic() < ends:
            acked += publish_readings(mosquitto, registry, seq, 5)
            seq += 5
            answers.append(_status(f"{service.url}/v1/alerts", officer))
            answers.append(_status(f"{service.url}/readyz"))
            time.sleep(1.0)
        during = sentinel.running()
        server.start()

        wait_until(lambda: _status(f"{service.url}/v1/alerts", officer)[0] == 200, "the alert API back")
        wait_until(lambda: _status(f"{service.url}/readyz")[0] == 200, "ready again")
        wait_until(lambda: stored_messages(conninfo, device) == set(range(1, seq)), "every acknowledged reading")
        after = sentinel.running()
    finally:
        service.stop()
    assert acked == seq - 1
    assert set(answers) == {(503, "database_unavailable"), (503, "unavailable")}, answers
    assert during == after == parts, "a part stopped during the outage"
    assert not any((tmp_path / "spool").glob("*.spool")), "the spool was replayed"


@pytest.mark.slow
def test_headless_demo_rides_out_a_database_outage(own_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path) -> None:
    server, conninfo = own_postgres
    out = io.StringIO()
    run = DemoRun()
    outage: list[datetime] = []
    spooled_replayed: list[int] = []

    def before_stop(r: DemoRun) -> None:  # the database is back: wait for the spool to be replayed
        wait_until(lambda: not any((tmp_path / "spool").glob("*.spool")), "the demo's spool replayed")
        with psycopg.connect(conninfo) as conn:
            row = conn.execute(
                "SELECT count(*) FROM message_log WHERE received_at BETWEEN %s AND %s", (outage[0], outage[1])
            ).fetchone()
        spooled_replayed.append(int(row[0]) if row else 0)

    settings = Settings(database_url=conninfo, data_dir=tmp_path, http_port=0)
    errors: list[BaseException] = []

    def demo() -> None:
        try:
            run_demo(
                settings, duration_s=75, headless=True, console=Console(file=out), keep=run, before_stop=before_stop
            )
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=demo)
    thread.start()
    wait_until(lambda: run.api_url != "" or errors, "the demo's service up", timeout_s=120)
    wait_until(lambda: _count(conninfo) > 0, "the demo's readings stored")
    outage.append(datetime.now(UTC))
    server.stop()
    time.sleep(OUTAGE_S)
    outage.append(datetime.now(UTC))
    server.start()
    thread.join(180)
    assert not thread.is_alive()
    assert not errors, errors
    text = out.getvalue()
    assert "数据库暂不可用" in text, text
    assert "数据库已恢复" in text, text
    assert run.database_outages == 1
    assert spooled_replayed, "the demo stopped before its callback"
    assert spooled_replayed[0] > 0, "readings accepted during the outage must be stored"
    assert run.board.sectors(), "the board is read again after the outage"


def _count(conninfo: str) -> int:
    try:
        with psycopg.connect(conninfo) as conn:
            row = conn.execute("SELECT count(*) FROM message_log").fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0
