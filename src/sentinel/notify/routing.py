"""From alert events to deliveries: who is told, on which channel, about what.

The alert lifecycle writes one hand-off row per alert event into the outbox (``kind`` ``notify.alert.<event>``,
no webhook) in the transaction that changes the alert. :func:`route_pending` takes those rows (``FOR UPDATE SKIP
LOCKED``) and, in one transaction, writes one delivery per matching group channel (robots), mentioning the officers
on duty for the alert's township and sector, starts the alert's escalation chain (a raise of a grade that has
one), and marks the row taken. Each delivery's ``dedupe_key`` is the event's plus the channel, so routing twice
(a crash before commit, two workers) adds nothing. Raises, escalations and releases are announced; de-escalations
and clears are not (they end the chain instead, see :mod:`.escalation`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from sentinel.engine.catalog import GRADE_INDEX
from sentinel.notify.config import ChannelsFile
from sentinel.notify.messages import alert_content
from sentinel.notify.roster import Duty, Roster

ANNOUNCED = ("raise", "escalate", "released")


@dataclass
class RouteReport:
    events: int = 0
    deliveries: int = 0
    chains: int = 0
    fallbacks: int = 0


def duty_for(roster: Roster | None, township: str, sector: str, now: datetime) -> Duty:
    if roster is None:
        return Duty(township, sector, None, fallback=True, note="未加载值班表 (sentinel duty load)")
    return roster.on_duty(township, sector, now)


def insert_delivery(
    cur: psycopg.Cursor[Any],
    key: str,
    alert: dict[str, Any],
    event: str,
    channel: str,
    recipient: str,
    mentions: list[str],
    content: dict[str, Any],
    now: datetime,
    step: int | None = None,
) -> int:
    cur.execute(
        """INSERT INTO notify_deliveries (dedupe_key, alert_id, event, step, channel, recipient, mentions, grade,
                                          township, content, created_at, next_attempt_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING""",
        (
            key,
            alert["alert_id"],
            event,
            step,
            channel,
            recipient,
            mentions,
            alert["grade"],
            alert.get("township") or "",
            json.dumps(content, ensure_ascii=False),
            now,
            now,
        ),
    )
    return cur.rowcount


def route_pending(
    conn: psycopg.Connection[Any],
    cfg: ChannelsFile,
    roster: Roster | None,
    now: datetime,
    tz: ZoneInfo,
    batch: int = 500,
) -> RouteReport:
    report = RouteReport()
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            """SELECT outbox_id, dedupe_key, payload FROM outbox
               WHERE webhook_id IS NULL AND kind LIKE 'notify.%%' AND delivered_at IS NULL
               ORDER BY outbox_id LIMIT %s FOR UPDATE SKIP LOCKED""",
            (batch,),
        )
        for outbox_id, key, alert in cur.fetchall():
            report.events += 1
            event = str(alert["event"])
            township, sector, grade = alert.get("township") or "", alert.get("sector") or "", str(alert["grade"])
            if event in ANNOUNCED:
                duty = duty_for(roster, township, sector, now)
                report.fallbacks += duty.fallback
                on_duty = "值班: " + "、".join(p.name for p in duty.officers) if duty.officers else "值班: 无"
                note = f"{on_duty}{'（' + duty.note + '）' if duty.note else ''}"
                content = alert_content(alert, event, tz, note)
                for channel in cfg.group_channels():
                    if not cfg.routes[channel.name].matches(grade, township, sector):
                        continue
                    mentions = [p.mobile for p in duty.officers if p.reachable_on(channel.name, channel.kind)]
                    report.deliveries += insert_delivery(
                        cur, f"{key}|{channel.name}", alert, event, channel.name, channel.name, mentions, content, now
                    )
            if event in ("raise", "released", "escalate") and grade in cfg.chains:
                # a stopped chain (acknowledged, then escalated or released again) starts over, numbering on
                cur.execute(
                    """INSERT INTO notify_escalations AS e (alert_id, grade, started_at, next_due_at)
                       VALUES (%s, %s, %s, %s)
                       ON CONFLICT (alert_id) DO UPDATE SET grade = excluded.grade,
                           started_at = CASE WHEN e.stopped_at IS NULL THEN e.started_at ELSE excluded.started_at END,
                           next_due_at = CASE WHEN e.stopped_at IS NULL THEN e.next_due_at
                                              ELSE excluded.next_due_at END,
                           base = CASE WHEN e.stopped_at IS NULL THEN e.base ELSE e.next_step END,
                           stopped_at = NULL, stop_reason = NULL""",
                    (alert["alert_id"], grade, now, now),
                )
                report.chains += cur.rowcount
            cur.execute(
                "UPDATE outbox SET delivered_at = %s, attempts = attempts + 1 WHERE outbox_id = %s", (now, outbox_id)
            )
    return report


def rank(grade: str) -> int:
    return GRADE_INDEX.get(grade, 0)
