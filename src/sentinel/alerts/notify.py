"""Notifications through the outbox, written in the transaction that changes the alert.

:func:`enqueue_alert_notification` adds one outbox row per matching webhook (routing by grade, sector and
township; an empty filter matches all; ``dedupe_key`` ``<event key>|wh<webhook id>``) and one hand-off row for the
notification layer (:mod:`sentinel.notify`, ``dedupe_key`` ``<event key>|notify``, no webhook), which routes it to
robots, SMS and e-mail by the duty roster. Both are unique, so a replayed transition cannot enqueue twice.

Webhook delivery moved to :mod:`sentinel.notify.webhook`; the names below are re-exported for one release.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg

from sentinel.notify.webhook import (  # re-exported for one release: import them from sentinel.notify.webhook
    DEDUPE_HEADER,
    SIGNATURE_HEADER,
    Backoff,
    WebhookDelivery,
    add_webhook,
    post,
    sign,
    verify,
)

__all__ = [
    "DEDUPE_HEADER",
    "SIGNATURE_HEADER",
    "Backoff",
    "WebhookDelivery",
    "add_webhook",
    "enqueue",
    "enqueue_alert_notification",
    "post",
    "sign",
    "verify",
]
NOTIFY_KIND_PREFIX = "notify."


def enqueue_alert_notification(
    cur: psycopg.Cursor[Any], alert: dict[str, Any], event: str, key: str, grade: str, at: datetime
) -> int:
    """Queue a notification of ``event`` on ``alert`` for every webhook whose routes match; returns rows added."""
    payload = {
        "type": "alert",
        "event": event,
        "alert_id": int(alert["alert_id"]),
        "alert_key": alert["alert_key"],
        "rule_id": alert["rule_id"],
        "subject": alert["subject"],
        "site_id": alert["site_id"],
        "township": alert["township"],
        "sector": alert["sector"],
        "alert_class": alert["alert_class"],
        "kind": alert["alert_class"],  # the old name of alert_class: deprecated, removed in 0.2
        "grade": grade,
        "state": alert["state"],
        "at": at.isoformat(),
    }
    cur.execute(
        """INSERT INTO outbox (dedupe_key, kind, payload) VALUES (%s, %s, %s::jsonb)
           ON CONFLICT (dedupe_key) DO NOTHING""",
        (f"{key}|notify", f"{NOTIFY_KIND_PREFIX}alert.{event}", json.dumps(payload, ensure_ascii=False)),
    )
    return enqueue(cur, f"alert.{event}", key, payload, grade, alert["sector"], alert["township"])


def enqueue(
    cur: psycopg.Cursor[Any], kind: str, key: str, payload: dict[str, Any], grade: str, sector: str, township: str
) -> int:
    cur.execute(
        """INSERT INTO outbox (dedupe_key, kind, payload, webhook_id)
           SELECT %s || '|wh' || webhook_id, %s,
                  %s::jsonb || jsonb_build_object('dedupe_key', %s || '|wh' || webhook_id),
                  webhook_id
           FROM webhooks
           WHERE (grades = '{}' OR %s = ANY(grades)) AND (sectors = '{}' OR %s = ANY(sectors))
             AND (townships = '{}' OR %s = ANY(townships))
           ON CONFLICT (dedupe_key) DO NOTHING""",
        (key, kind, json.dumps(payload, ensure_ascii=False), key, grade, sector, township),
    )
    return cur.rowcount
