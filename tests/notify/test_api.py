"""The notification layer in the running service: /v1/duty, an alert's notification history, the channels with
their secrets hidden, and the Prometheus counter of delivery failures per channel. A robot whose secret is wrong
answers 310000: reported (history, metric), retried a few times, then marked failed, never retried for ever."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from sentinel.notify import roster as duty_roster
from sentinel.registry.repository import create_api_key
from sentinel.testing.service import sentinel_for_tests
from sentinel.threaded import SentinelThread
from tests.notify.receivers import DingTalkRobotServer, FakeClock
from tests.notify.support import make_county, notifier, raise_alert

T0 = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "notify"
GOOD, BAD = "SECgood-secret-0123456789", "SECwrong-secret-9876543210"


@pytest.fixture
def served(migrated_db: str, tmp_path: Path) -> Iterator[tuple[httpx.Client, Any, DingTalkRobotServer, str]]:
    clock = FakeClock(T0)
    ding = DingTalkRobotServer(clock, "api", secret=GOOD)
    channels = {
        "channels": [
            {"name": "好群", "kind": "dingtalk", "webhook": ding.webhook, "secret": GOOD},
            {"name": "坏群", "kind": "dingtalk", "webhook": ding.webhook, "secret": BAD},
        ]
    }
    sentinel = sentinel_for_tests(migrated_db, tmp_path / "spool")
    # The test drives the notifier's passes itself (a fake clock); the service only serves its routes.
    worker = sentinel.notifier = notifier(migrated_db, channels, clock, tmp_path, registry=sentinel.metrics.registry)
    with psycopg.connect(migrated_db) as conn:
        token = create_api_key(conn, "duty-officer", "officer", None)
        admin_token = create_api_key(conn, "duty-admin", "admin", None)
        duty_roster.save(conn, duty_roster.load_file(EXAMPLES / "roster.yaml", "Asia/Shanghai"), "roster.yaml", T0)
    service = SentinelThread(sentinel).start()
    try:
        with httpx.Client(base_url=service.url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
            yield http, (worker, clock, admin_token), ding, migrated_db
    finally:
        service.stop()
        ding.close()


def test_history_duty_channels_and_failure_metric(served: tuple[httpx.Client, Any, DingTalkRobotServer, str]) -> None:
    http, (worker, clock, admin_token), _ding, db = served
    county = make_county(db)
    with psycopg.connect(db) as conn:
        alert = raise_alert(conn, county, "东山乡", "orange", 1, clock())
    for _ in range(4):
        worker.run_once()
        clock.advance(minutes=1)

    history = http.get(f"/v1/alerts/{alert}/notifications")
    assert history.status_code == 200
    by_channel = {d["channel"]: d for d in history.json()["deliveries"]}
    assert by_channel["好群"]["state"] == "sent"
    assert by_channel["坏群"]["state"] == "failed"  # a configuration error: three tries, then reported as failed
    bad = by_channel["坏群"]["attempts_log"]
    assert [a["result"] for a in bad] == ["config_error"] * 3
    assert "310000" in bad[0]["detail"]
    assert http.get("/v1/alerts/999999/notifications").status_code == 404
    assert http.get(f"/v1/alerts/{alert}/notifications", headers={"Authorization": "Bearer nope"}).status_code == 401

    metrics = http.get("/metrics").text
    assert 'sentinel_notify_delivery_failures_total{channel="坏群"} 3.0' in metrics
    assert 'sentinel_notify_delivery_failures_total{channel="好群"} 0.0' in metrics
    assert 'sentinel_notify_deliveries{state="queued"} 0.0' in metrics
    assert "sentinel_notify_duty_fallbacks_total 1.0" in metrics  # 东山乡 has no roster of its own

    duty = http.get("/v1/duty", params={"at": "2026-12-04T23:30:00+08:00"}).json()
    rows = {d["township"]: d for d in duty["duty"]}
    assert rows["新庄镇"]["shift"] == "新庄镇夜班"
    assert rows["新庄镇"]["officers"][0]["name"] == "赵六"
    assert rows["河口镇"]["fallback"] is True
    assert "转县级值班" in rows["河口镇"]["note"]
    one = http.get("/v1/duty", params={"township": "东山乡", "at": "2026-12-04T10:00:00+08:00"}).json()["duty"][0]
    assert one["fallback"] is True
    assert one["shift"] == "县应急局总值班"
    assert "东山乡 无值班表" in one["note"]

    roster = {
        "shifts": [
            {"name": "全天", "start": "00:00", "end": "24:00", "officers": [{"name": "甲", "mobile": "13900000001"}]}
        ]
    }
    assert http.put("/v1/duty", json=roster).status_code == 403  # an officer may read the roster, not replace it
    admin = {"Authorization": f"Bearer {admin_token}"}
    bad = http.put("/v1/duty", json={"shifts": [{"start": "8点", "officers": []}]}, headers=admin)
    assert bad.status_code == 422
    assert "shifts[0]" in bad.json()["reason"]
    assert http.put("/v1/duty", json=roster, headers=admin).json()["shifts"] == 1
    assert http.get("/v1/duty", params={"township": "新庄镇"}).json()["duty"][0]["officers"][0]["name"] == "甲"

    shown = http.get("/v1/notify/channels")
    assert shown.status_code == 200
    assert GOOD not in shown.text
    assert BAD not in shown.text
    assert "access_token=***" in shown.text
