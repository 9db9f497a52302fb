"""Escalation until acknowledged, with the test's clock: officer at once, supervisor (SMS and phone) after 5
minutes, department head after 15, reminders every 10 until acknowledged; the chain survives restarts (also one
between raising a step and sending it), never raises a step twice, and acknowledging stops it at once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sentinel.alerts.actions import act
from sentinel.alerts.notify import enqueue_alert_notification
from sentinel.notify import roster as duty_roster
from sentinel.notify.audit import alert_notifications
from sentinel.notify.escalation import escalate_due
from sentinel.notify.service import Notifier
from tests.notify.receivers import AliyunServer, DingTalkRobotServer, FakeClock
from tests.notify.support import County, make_county, notifier, raise_alert

T0 = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)  # Friday 10:00 in Shanghai: 新庄镇白班 (张三; supervisor 李四)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "notify"
OFFICER, SUPERVISOR, HEAD = "13800000001", "13800000002", "13800000009"
SECRET = "SECescalation-secret-0123"


@pytest.fixture
def world(
    migrated_db: str, tmp_path: Path
) -> Iterator[tuple[FakeClock, County, DingTalkRobotServer, AliyunServer, dict[str, Any]]]:
    clock = FakeClock(T0)
    ding = DingTalkRobotServer(clock, "esc", secret=SECRET)
    aliyun = AliyunServer(clock, "LTAIesc", "esc-secret")
    account = {
        "provider": "aliyun",
        "access_key_id": "LTAIesc",
        "access_key_secret": "esc-secret",
        "endpoint": aliyun.base + "/",
    }
    channels = {
        "channels": [
            {"name": "钉钉值班群", "kind": "dingtalk", "webhook": ding.webhook, "secret": SECRET},
            {"name": "短信", "kind": "sms", "sign_name": "某县应急", "template_code": "SMS_1"} | account,
            {"name": "电话", "kind": "voice", "template_code": "TTS_1"} | account,
        ],
        "escalation": {
            "red": {
                "steps": [
                    {"after_min": 0, "to": "officer", "channels": ["短信"]},
                    {"after_min": 5, "to": "supervisor", "channels": ["短信", "电话"]},
                    {"after_min": 15, "to": "head", "channels": ["短信", "电话"]},
                ],
                "remind_every_min": 10,
            }
        },
    }
    county = make_county(migrated_db)
    with psycopg.connect(migrated_db) as conn:
        duty_roster.save(conn, duty_roster.load_file(EXAMPLES / "roster.yaml", "Asia/Shanghai"), "roster.yaml", T0)
    yield clock, county, ding, aliyun, channels
    ding.close()
    aliyun.close()


def calls(aliyun: AliyunServer) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for c in aliyun.calls:
        key = (c.get("PhoneNumbers") or c["CalledNumber"], "sms" if c["Action"] == "SendSms" else "voice")
        out[key] = out.get(key, 0) + 1
    return out


def test_chain_step_by_step_survives_restarts_never_repeats_and_stops_on_ack(
    world: tuple[FakeClock, County, DingTalkRobotServer, AliyunServer, dict[str, Any]], migrated_db: str, tmp_path: Path
) -> None:
    clock, county, ding, aliyun, channels = world
    first = notifier(migrated_db, channels, clock, tmp_path)
    with psycopg.connect(migrated_db) as conn:
        alert = raise_alert(conn, county, "新庄镇", "red", 1, T0)
    first.run_once()
    assert calls(aliyun) == {(OFFICER, "sms"): 1}
    assert len(ding.accepted) == 1
    assert ding.accepted[0][1]["at"]["atMobiles"] == [OFFICER]
    assert "值班: 张三" in ding.texts()[0]

    clock.advance(minutes=4, seconds=59)
    first.run_once()
    assert calls(aliyun) == {(OFFICER, "sms"): 1}  # not yet

    clock.advance(seconds=1)  # +5 min: the supervisor, by SMS and by phone
    first.run_once()
    first.run_once()
    assert calls(aliyun) == {(OFFICER, "sms"): 1, (SUPERVISOR, "sms"): 1, (SUPERVISOR, "voice"): 1}

    clock.advance(minutes=5)  # +10: a restart (a new notifier on the same database) changes nothing
    second = notifier(migrated_db, channels, clock, tmp_path)
    second.run_once()
    assert sum(calls(aliyun).values()) == 3

    clock.advance(minutes=5)  # +15: step 3 is raised, then the process dies before sending it
    with psycopg.connect(migrated_db) as conn:
        raised = escalate_due(conn, second.cfg, duty_roster.stored(conn, "Asia/Shanghai"), clock(), second.tz)
    assert raised.raised == [(alert, 2, "step")]
    third = notifier(migrated_db, channels, clock, tmp_path)
    third.run_once()
    third.run_once()
    assert calls(aliyun)[(HEAD, "sms")] == 1
    assert calls(aliyun)[(HEAD, "voice")] == 1

    clock.advance(minutes=10)  # +25: a reminder to the last step's audience
    third.run_once()
    assert calls(aliyun)[(HEAD, "sms")] == 2
    assert calls(aliyun)[(HEAD, "voice")] == 2

    clock.advance(minutes=2)
    with psycopg.connect(migrated_db) as conn:
        act(conn, alert, "ack", "张三", "现场已处置", clock())
    before = dict(calls(aliyun))
    for _ in range(10):
        clock.advance(minutes=10)
        third.run_once()
    assert calls(aliyun) == before  # nothing after the acknowledgement
    assert before == {
        (OFFICER, "sms"): 1,
        (SUPERVISOR, "sms"): 1,
        (SUPERVISOR, "voice"): 1,
        (HEAD, "sms"): 2,
        (HEAD, "voice"): 2,
    }

    with psycopg.connect(migrated_db) as conn:
        history = alert_notifications(conn, alert)
    chain = history["escalation"]
    assert [s["step"] for s in chain["steps"]] == [0, 1, 2, 3]
    assert [s["kind"] for s in chain["steps"]] == ["step", "step", "step", "reminder"]
    assert chain["stop_reason"] == "已确认"
    assert chain["stopped_at"] is not None
    attempts = [a for d in history["deliveries"] for a in d["attempts_log"]]
    assert len(attempts) == 1 + 7
    assert all(a["result"] == "ok" for a in attempts)
    assert {(a["channel"], a["recipient"]) for a in attempts} >= {("钉钉值班群", "钉钉值班群"), ("电话", HEAD)}


def test_ack_cancels_a_raised_step_not_yet_sent(
    world: tuple[FakeClock, County, DingTalkRobotServer, AliyunServer, dict[str, Any]], migrated_db: str, tmp_path: Path
) -> None:
    clock, county, _ding, aliyun, channels = world
    worker: Notifier = notifier(migrated_db, channels, clock, tmp_path)
    with psycopg.connect(migrated_db) as conn:
        alert = raise_alert(conn, county, "新庄镇", "red", 2, T0)
    worker.run_once()
    clock.advance(minutes=5)
    with psycopg.connect(migrated_db) as conn:
        escalate_due(conn, worker.cfg, duty_roster.stored(conn, "Asia/Shanghai"), clock(), worker.tz)
        act(conn, alert, "ack", "张三", "收到", clock())
    worker.run_once()
    assert calls(aliyun) == {(OFFICER, "sms"): 1}
    with psycopg.connect(migrated_db) as conn:
        states = conn.execute(
            "SELECT step, state FROM notify_deliveries WHERE alert_id = %s AND step IS NOT NULL ORDER BY step, channel",
            (alert,),
        ).fetchall()
        results = {r for (r,) in conn.execute("SELECT result FROM notify_attempts")}
    assert states == [(0, "sent"), (1, "cancelled"), (1, "cancelled")]
    assert "cancelled" in results


def test_an_acknowledged_alert_that_escalates_again_starts_its_chain_over(
    world: tuple[FakeClock, County, DingTalkRobotServer, AliyunServer, dict[str, Any]], migrated_db: str, tmp_path: Path
) -> None:
    clock, county, _ding, aliyun, channels = world
    worker = notifier(migrated_db, channels, clock, tmp_path)
    with psycopg.connect(migrated_db) as conn:
        alert = raise_alert(conn, county, "新庄镇", "red", 3, T0)
    worker.run_once()
    clock.advance(minutes=6)
    worker.run_once()  # officer, then supervisor
    with psycopg.connect(migrated_db) as conn:
        act(conn, alert, "ack", "张三", "收到", clock())
    clock.advance(minutes=10)
    worker.run_once()  # the chain sees the acknowledgement and stops
    with psycopg.connect(migrated_db) as conn:
        row = conn.execute("SELECT stop_reason FROM notify_escalations WHERE alert_id = %s", (alert,)).fetchone()
        assert row == ("已确认",)
        # the condition worsens: the lifecycle clears the acknowledgement and announces an escalation
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                """UPDATE alerts SET acked = false, state = 'active_unack' WHERE alert_id = %s
                   RETURNING alert_id, alert_key, rule_id, subject, site_id, township, sector,
                             alert_class, state""",
                (alert,),
            )
            assert cur.description is not None
            row = cur.fetchone()
            assert row is not None
            again = dict(zip([d.name for d in cur.description], row, strict=True))
            enqueue_alert_notification(cur, again, "escalate", f"again|{alert}", "red", clock())
    worker.run_once()
    assert calls(aliyun) == {(OFFICER, "sms"): 2, (SUPERVISOR, "sms"): 1, (SUPERVISOR, "voice"): 1}
    clock.advance(minutes=5)
    worker.run_once()
    assert calls(aliyun)[(SUPERVISOR, "sms")] == 2
    with psycopg.connect(migrated_db) as conn:
        steps = conn.execute(
            "SELECT step, audience FROM notify_escalation_steps WHERE alert_id = %s ORDER BY step", (alert,)
        ).fetchall()
    assert steps == [(0, "officer"), (1, "supervisor"), (2, "officer"), (3, "supervisor")]


def test_sms_daily_limit_per_number_holds_the_rest_until_the_next_day(
    world: tuple[FakeClock, County, DingTalkRobotServer, AliyunServer, dict[str, Any]], migrated_db: str, tmp_path: Path
) -> None:
    clock, county, _ding, aliyun, channels = world
    channels["channels"][1]["daily_limit_per_number"] = 2
    worker = notifier(migrated_db, channels, clock, tmp_path)
    alerts = []
    with psycopg.connect(migrated_db) as conn:
        for n in range(3):
            alerts.append(raise_alert(conn, county, "新庄镇", "red", 10 + n, clock()))
    worker.run_once()
    worker.run_once()
    assert calls(aliyun)[(OFFICER, "sms")] == 2  # the third waits: 2 a day for this number
    with psycopg.connect(migrated_db) as conn:
        held = conn.execute(
            """SELECT d.state, d.next_attempt_at, t.result FROM notify_deliveries d JOIN notify_attempts t
               USING (delivery_id) WHERE d.channel = '短信' AND d.recipient = %s AND t.result <> 'ok'""",
            (OFFICER,),
        ).fetchall()
    # held once (not retried every pass) until midnight in the display time zone (16:00 UTC)
    assert held == [("queued", datetime(2026, 12, 4, 16, 0, tzinfo=UTC), "daily_limit")]
    clock.now = datetime(2026, 12, 4, 15, 59, tzinfo=UTC)  # later steps go to the supervisor and head, not here
    worker.run_once()
    assert calls(aliyun)[(OFFICER, "sms")] == 2
    clock.now = datetime(2026, 12, 4, 16, 0, 1, tzinfo=UTC)
    worker.run_once()
    assert calls(aliyun)[(OFFICER, "sms")] == 3  # the next day: sent, not lost
