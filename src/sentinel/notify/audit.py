"""The audit trail of notifications and its metrics.

Every attempt (channel, recipient, time, result, the digest it belonged to) is a row of ``notify_attempts``;
:func:`alert_notifications` gives an alert's whole notification history: each delivery with its state (``sent``
alone, ``digested`` = sent in a digest, ``queued``, ``failed``, ``cancelled``), its digest and every attempt.

Metrics (fixed label sets: channel names come from the channels file, results from :class:`Outcome`):
``sentinel_notify_attempts_total{channel,result}``, ``sentinel_notify_delivery_failures_total{channel}`` (every
attempt that did not succeed), ``sentinel_notify_duty_fallbacks_total`` (events routed to the county shift) and
``sentinel_notify_deliveries{state}``, the accounting of every routed message,
refreshed after each pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge

from sentinel.notify.channel import Outcome

STATES = ("queued", "sent", "digested", "failed", "cancelled")
RESULTS = (*(o.value for o in Outcome), "cancelled")


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry | None, channels: Iterable[str]) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.registry = r
        self.attempts = Counter(
            "sentinel_notify_attempts_total",
            "Notification attempts, by channel and result",
            ["channel", "result"],
            registry=r,
        )
        self.failures = Counter(
            "sentinel_notify_delivery_failures_total",
            "Notification attempts that did not succeed (rate limited, refused, failed, over a daily limit)",
            ["channel"],
            registry=r,
        )
        self.deliveries = Gauge(
            "sentinel_notify_deliveries",
            "Routed notifications by state: every alert is sent, digested or queued",
            ["state"],
            registry=r,
        )
        self.fallbacks = Counter(
            "sentinel_notify_duty_fallbacks_total",
            "Alert events routed to the county-level shift because their township had no shift on duty",
            registry=r,
        )
        for name in channels:
            self.failures.labels(name)
            for result in RESULTS:
                self.attempts.labels(name, result)
        for state in STATES:
            self.deliveries.labels(state)

    def attempt(self, channel: str, result: str) -> None:
        self.attempts.labels(channel, result).inc()
        if result not in ("ok", "cancelled"):
            self.failures.labels(channel).inc()

    def refresh(self, conn: psycopg.Connection[Any]) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state, n in conn.execute("SELECT state, count(*) FROM notify_deliveries GROUP BY state").fetchall():
            counts[state] = int(n)
        for state, n in counts.items():
            self.deliveries.labels(state).set(n)
        return counts


def record_attempt(
    cur: psycopg.Cursor[Any],
    channel: str,
    recipient: str,
    at: Any,
    result: str,
    detail: str,
    *,
    delivery_id: int | None = None,
    digest_id: int | None = None,
) -> None:
    cur.execute(
        """INSERT INTO notify_attempts (delivery_id, digest_id, channel, recipient, at, result, detail)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (delivery_id, digest_id, channel, recipient, at, result, detail),
    )


def alert_notifications(conn: psycopg.Connection[Any], alert_id: int) -> dict[str, Any]:
    """The notification history of one alert: deliveries (with attempts) and the escalation chain."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT d.delivery_id, d.event, d.step, d.channel, d.recipient, d.mentions, d.grade, d.state,
                      d.digest_id, d.attempts, d.created_at, d.done_at, d.last_result, d.content->>'title' AS title,
                      g.count AS digest_count, g.state AS digest_state
               FROM notify_deliveries d LEFT JOIN notify_digests g USING (digest_id)
               WHERE d.alert_id = %s ORDER BY d.delivery_id""",
            (alert_id,),
        )
        names = [c.name for c in cur.description or ()]
        deliveries = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        cur.execute(
            """SELECT t.attempt_id, t.delivery_id, t.digest_id, t.channel, t.recipient, t.at, t.result, t.detail
               FROM notify_attempts t
               WHERE t.delivery_id IN (SELECT delivery_id FROM notify_deliveries WHERE alert_id = %s)
                  OR t.digest_id IN (SELECT digest_id FROM notify_deliveries
                                     WHERE alert_id = %s AND digest_id IS NOT NULL)
               ORDER BY t.attempt_id""",
            (alert_id, alert_id),
        )
        names = [c.name for c in cur.description or ()]
        attempts = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        for d in deliveries:
            d["attempts_log"] = [
                a
                for a in attempts
                if a["delivery_id"] == d["delivery_id"] or (d["digest_id"] and a["digest_id"] == d["digest_id"])
            ]
        cur.execute(
            """SELECT grade, started_at, next_step, next_due_at, stopped_at, stop_reason
               FROM notify_escalations WHERE alert_id = %s""",
            (alert_id,),
        )
        names = [c.name for c in cur.description or ()]
        row = cur.fetchone()
        escalation = dict(zip(names, row, strict=True)) if row else None
        if escalation is not None:
            cur.execute(
                "SELECT step, kind, audience, at FROM notify_escalation_steps WHERE alert_id = %s ORDER BY step",
                (alert_id,),
            )
            escalation["steps"] = [
                dict(zip(("step", "kind", "audience", "at"), r, strict=True)) for r in cur.fetchall()
            ]
    return {"alert_id": alert_id, "deliveries": deliveries, "escalation": escalation}
