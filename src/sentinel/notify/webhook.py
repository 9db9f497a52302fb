"""The generic signed JSON webhook, delivered from the outbox by a retrying worker (moved from ``alerts/notify.py``).

Routing happens at write time (:func:`sentinel.alerts.notify.enqueue`): one outbox row per matching webhook, with
``dedupe_key = <event key>|wh<webhook id>``, so a replayed transition cannot enqueue twice.

Delivery: :class:`WebhookDelivery` takes due rows (``FOR UPDATE SKIP LOCKED``, so two workers never send the same
row at once), POSTs the JSON payload with headers ``X-Sentinel-Dedupe-Key`` and
``X-Sentinel-Signature: sha256=<hex HMAC-SHA256 of the body with the webhook's secret>``, and marks the row
delivered on a 2xx answer. A failure (refused connection, timeout, non-2xx) increments ``attempts`` and sets
``next_attempt_at`` with exponential backoff (``base * 2**attempts``, capped), keeping the last error. The state
lives in the table, so delivery survives a restart. Delivery is at least once: a crash between the receiver's 2xx
and our commit sends that row again with the same dedupe key, which receivers use to drop the repeat. Plain
urllib in a worker thread: a webhook POST is ten lines, not a dependency.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from sentinel.store.database import connect

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Sentinel-Signature"
DEDUPE_HEADER = "X-Sentinel-Dedupe-Key"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def add_webhook(
    conn: psycopg.Connection[Any],
    name: str,
    url: str,
    secret: str,
    *,
    grades: list[str] | None = None,
    sectors: list[str] | None = None,
    townships: list[str] | None = None,
) -> int:
    """Create or replace the webhook ``name``; returns its id."""
    with conn.transaction():
        row = conn.execute(
            """INSERT INTO webhooks (name, url, secret, grades, sectors, townships) VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (name) DO UPDATE SET url = excluded.url, secret = excluded.secret,
                   grades = excluded.grades, sectors = excluded.sectors, townships = excluded.townships
               RETURNING webhook_id""",
            (name, url, secret, grades or [], sectors or [], townships or []),
        ).fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True)
class Backoff:
    base_s: float = 1.0
    cap_s: float = 300.0

    def delay_s(self, attempts: int) -> float:
        return float(min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1)))


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> None:
    """POST; raises on anything but a 2xx answer."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        if not 200 <= response.status < 300:
            raise urllib.error.HTTPError(url, response.status, "not 2xx", response.headers, None)


class WebhookDelivery:
    """Sends due outbox rows; ``deliver_due`` is one pass, ``run`` loops until cancelled."""

    def __init__(
        self, conninfo: str, *, backoff: Backoff | None = None, timeout_s: float = 5.0, batch: int = 50
    ) -> None:
        self.conninfo = conninfo
        self.backoff = backoff or Backoff()
        self.timeout_s = timeout_s
        self.batch = batch

    def deliver_due(self, now: datetime | None = None) -> tuple[int, int]:
        """One pass over due rows: returns (delivered, failed)."""
        now = now or datetime.now(UTC)
        delivered = failed = 0
        with connect(self.conninfo) as conn, conn.transaction():
            rows = conn.execute(
                """SELECT o.outbox_id, o.dedupe_key, o.payload, o.attempts, w.url, w.secret
                   FROM outbox o JOIN webhooks w USING (webhook_id)
                   WHERE o.delivered_at IS NULL AND o.next_attempt_at <= %s
                   ORDER BY o.outbox_id LIMIT %s FOR UPDATE OF o SKIP LOCKED""",
                (now, self.batch),
            ).fetchall()
            for outbox_id, dedupe_key, payload, attempts, url, secret in rows:
                body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
                headers = {
                    "Content-Type": "application/json",
                    DEDUPE_HEADER: dedupe_key,
                    SIGNATURE_HEADER: sign(secret, body),
                }
                try:
                    post(url, body, headers, self.timeout_s)
                except (OSError, urllib.error.URLError) as exc:
                    failed += 1
                    delay = timedelta(seconds=self.backoff.delay_s(attempts + 1))
                    conn.execute(
                        """UPDATE outbox SET attempts = attempts + 1, next_attempt_at = %s, last_error = %s
                           WHERE outbox_id = %s""",
                        (now + delay, str(exc)[:500], outbox_id),
                    )
                else:
                    delivered += 1
                    conn.execute(
                        "UPDATE outbox SET attempts = attempts + 1, delivered_at = %s, last_error = NULL "
                        "WHERE outbox_id = %s",
                        (datetime.now(UTC), outbox_id),
                    )
        return delivered, failed

    async def run(self, interval_s: float = 1.0) -> None:
        while True:
            try:
                await asyncio.to_thread(self.deliver_due)
            except Exception as exc:  # a database hiccup must not end delivery; the rows wait in the table
                log.warning("webhook delivery pass failed: %s", exc)
            await asyncio.sleep(interval_s)
