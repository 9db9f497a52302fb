"""Sending queued deliveries within each channel's limits, without losing or repeating any.

Robots accept about 20 messages a minute and then block the sender for minutes. Per group channel and pass, the
*budget* is its ``per_minute`` minus the attempts in the last 60 seconds (counted from the audit trail, so the
limit holds across passes, workers and restarts). A channel that answered "rate limited" is left alone for
``block_minutes``. Within the budget:

* queued digests (formed earlier, not yet accepted) go first;
* if every queued delivery fits with a reserve of 5 messages left for red and orange still to come, each is sent
  alone;
* otherwise red and orange are sent alone, highest first, as long as one message per township is left for the
  rest; everything else is folded into one digest per township ("12 条新预警 · 新庄镇: 3 橙色，9 黄色 — …").
  Townships whose digest does not fit wait for the next minute.

A delivery is therefore always exactly one of: ``sent`` (alone), ``digested`` (its digest was accepted), ``queued``
(waiting, possibly already in a digest that waits), ``failed`` (a configuration error, reported after
``config_retries`` tries) or ``cancelled`` (an escalation message whose alert was acknowledged first). Rows are
locked ``FOR UPDATE SKIP LOCKED`` and their state changes in the transaction of the send, so two workers never
send one row; a transaction-scoped advisory lock per robot lets only one worker spend its budget at a time.
Personal channels (SMS, voice, e-mail) send one by one, holding a number that reached its daily
limit (counted in the display time zone's day) until the next day.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from sentinel.engine.catalog import GRADE_INDEX
from sentinel.notify.audit import NotifyMetrics, record_attempt
from sentinel.notify.channel import Channel, Outcome, SendResult
from sentinel.notify.config import ChannelsFile
from sentinel.notify.messages import digest_content, message_of

log = logging.getLogger(__name__)
WINDOW = timedelta(seconds=60)
URGENT = 3  # orange and red are sent alone first
RESERVE = 5  # messages a minute kept for red and orange while lower grades queue up


@dataclass
class DispatchReport:
    sent: int = 0
    digests: int = 0
    digested: int = 0
    rate_limited: int = 0
    failed: int = 0
    cancelled: int = 0
    held: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Item:
    delivery_id: int
    alert_id: int
    grade: str
    township: str
    recipient: str
    mentions: tuple[str, ...]
    content: dict[str, Any]
    attempts: int

    @property
    def rank(self) -> int:
        return GRADE_INDEX.get(self.grade, 0)


def plan(items: list[Item], budget: int, reserve: int = RESERVE) -> tuple[list[Item], list[tuple[str, list[Item]]]]:
    """Which items go alone and which townships' items go as one digest each, within ``budget`` messages.
    ``items`` are ordered highest grade first, then oldest. When everything fits with ``reserve`` messages to spare
    (for red and orange alerts still to come this minute), each goes alone; otherwise it is a flood: red and orange
    alone while one message per township is left, the rest in one digest per township."""
    if budget <= 0 or not items:
        return [], []
    if len(items) <= budget - reserve or (all(i.rank >= URGENT for i in items[:budget]) and len(items) <= budget):
        return list(items), []
    towns = Counter(i.township for i in items)
    singles: list[Item] = []
    for item in items:
        if item.rank < URGENT:
            break
        towns[item.township] -= 1
        groups = sum(1 for n in towns.values() if n > 0)
        if len(singles) + 1 + groups > budget:
            towns[item.township] += 1
            break
        singles.append(item)
    taken = {i.delivery_id for i in singles}
    groups_of: dict[str, list[Item]] = {}
    for item in items:
        if item.delivery_id not in taken:
            groups_of.setdefault(item.township, []).append(item)
    ordered = sorted(groups_of.items(), key=lambda kv: (-max(i.rank for i in kv[1]), min(i.delivery_id for i in kv[1])))
    return singles, ordered[: budget - len(singles)]


class Dispatcher:
    def __init__(self, cfg: ChannelsFile, tz: ZoneInfo, metrics: NotifyMetrics, config_retries: int = 3) -> None:
        self.cfg = cfg
        self.tz = tz
        self.metrics = metrics
        self.config_retries = config_retries

    def dispatch(self, conn: psycopg.Connection[Any], now: datetime) -> DispatchReport:
        report = DispatchReport()
        self._cancel_stopped(conn, now, report)
        for channel in self.cfg.channels.values():
            with conn.transaction(), conn.cursor() as cur:
                if channel.group:
                    self._group(cur, channel, now, report)
                else:
                    self._personal(cur, channel, now, report)
        return report

    # ---- bookkeeping ------------------------------------------------------------------------------------------

    def _cancel_stopped(self, conn: psycopg.Connection[Any], now: datetime, report: DispatchReport) -> None:
        """Escalation messages not yet sent for an alert that was acknowledged, shelved or cleared meanwhile."""
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                """UPDATE notify_deliveries d
                   SET state = 'cancelled', done_at = %s, last_result = '告警已确认/搁置/解除'
                   FROM alerts a
                   WHERE d.alert_id = a.alert_id AND d.state = 'queued' AND d.step IS NOT NULL AND d.digest_id IS NULL
                     AND (a.acked OR a.state IN ('normal', 'shelved', 'out_of_service'))
                   RETURNING d.delivery_id, d.channel, d.recipient""",
                (now,),
            )
            for delivery_id, channel, recipient in cur.fetchall():
                record_attempt(
                    cur, channel, recipient, now, "cancelled", "告警已确认/搁置/解除，不再发送", delivery_id=delivery_id
                )
                self.metrics.attempt(channel, "cancelled")
                report.cancelled += 1

    def _record(
        self,
        cur: psycopg.Cursor[Any],
        channel: Channel,
        recipient: str,
        now: datetime,
        result: SendResult,
        *,
        delivery_id: int | None = None,
        digest_id: int | None = None,
    ) -> None:
        record_attempt(
            cur,
            channel.name,
            recipient,
            now,
            result.outcome.value,
            result.detail,
            delivery_id=delivery_id,
            digest_id=digest_id,
        )
        self.metrics.attempt(channel.name, result.outcome.value)
        if not result.ok:
            log.warning("notification via %s not sent: %s %s", channel.name, result.outcome.value, result.detail)

    def _retry_at(self, result: SendResult, attempts: int, now: datetime) -> datetime:
        if result.outcome is Outcome.RATE_LIMITED:
            return now + timedelta(minutes=self.cfg.block_minutes)
        if result.outcome is Outcome.DAILY_LIMIT:
            return self._next_midnight(now)
        return now + timedelta(seconds=min(300.0, 5.0 * 2 ** max(0, attempts)))

    def _next_midnight(self, now: datetime) -> datetime:
        local = now.astimezone(self.tz)
        return datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), self.tz)

    def _gave_up(self, result: SendResult, attempts: int) -> bool:
        return result.outcome is Outcome.CONFIG_ERROR and attempts >= self.config_retries

    def _finish(
        self,
        cur: psycopg.Cursor[Any],
        table: str,
        key: str,
        row_id: int,
        result: SendResult,
        attempts: int,
        now: datetime,
        ok_state: str,
    ) -> None:
        if result.ok:
            state, when = ok_state, now
        elif self._gave_up(result, attempts):
            state, when = "failed", now
        else:
            state, when = "queued", None
        extra = ", last_result = %s" if table == "notify_deliveries" else ""
        params: list[Any] = [state, attempts, when, self._retry_at(result, attempts, now)]
        if extra:
            params.append(result.outcome.value + (f": {result.detail}" if result.detail else ""))
        cur.execute(
            f"UPDATE {table} SET state = %s, attempts = %s, done_at = %s, next_attempt_at = %s{extra} WHERE {key} = %s",
            (*params, row_id),
        )

    # ---- group channels (robots) ------------------------------------------------------------------------------

    def _budget(self, cur: psycopg.Cursor[Any], channel: Channel, now: datetime) -> int:
        cur.execute(
            """SELECT count(*) FILTER (WHERE at > %s AND result NOT IN ('cancelled', 'daily_limit')),
                      max(at) FILTER (WHERE result = 'rate_limited')
               FROM notify_attempts WHERE channel = %s AND at > %s""",
            (now - WINDOW, channel.name, now - max(WINDOW, timedelta(minutes=self.cfg.block_minutes))),
        )
        row = cur.fetchone()
        assert row is not None
        used, blocked_at = int(row[0]), row[1]
        if blocked_at is not None and blocked_at + timedelta(minutes=self.cfg.block_minutes) > now:
            return 0
        return (channel.per_minute or 1_000_000) - used

    def _group(self, cur: psycopg.Cursor[Any], channel: Channel, now: datetime, report: DispatchReport) -> None:
        # one sender per robot at a time (across processes), so two budgets are never spent at once
        cur.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", (f"sentinel.notify:{channel.name}",))
        row = cur.fetchone()
        if row is None or not row[0]:
            return
        budget = self._budget(cur, channel, now)
        if budget <= 0:
            return
        cur.execute(
            """SELECT digest_id, content, attempts FROM notify_digests
               WHERE channel = %s AND state = 'queued' AND next_attempt_at <= %s
               ORDER BY digest_id FOR UPDATE SKIP LOCKED""",
            (channel.name, now),
        )
        for digest_id, content, attempts in cur.fetchall():
            if budget <= 0:
                return
            budget -= 1
            if not self._send_digest(cur, channel, int(digest_id), content, int(attempts), now, report):
                return
        cur.execute(
            """SELECT delivery_id, alert_id, grade, township, recipient, mentions, content, attempts
               FROM notify_deliveries
               WHERE channel = %s AND state = 'queued' AND digest_id IS NULL AND next_attempt_at <= %s
               ORDER BY CASE grade WHEN 'red' THEN 4 WHEN 'orange' THEN 3 WHEN 'yellow' THEN 2 ELSE 1 END DESC,
                        delivery_id
               FOR UPDATE SKIP LOCKED""",
            (channel.name, now),
        )
        items = [Item(r[0], r[1], r[2], r[3], r[4], tuple(r[5]), r[6], r[7]) for r in cur.fetchall()]
        singles, digests = plan(items, budget)
        for item in singles:
            if not self._send_single(cur, channel, item, now, report):
                return
        for town, members in digests:
            content = digest_content(
                channel.name, town or "未知乡镇", [self._digest_entry(m) for m in members], now, self.tz
            )
            mentions = sorted({m for item in members for m in item.mentions})
            content["mentions"] = mentions
            content["grade"] = max(members, key=lambda m: m.rank).grade
            cur.execute(
                """INSERT INTO notify_digests (channel, township, count, content, created_at, next_attempt_at)
                   VALUES (%s, %s, %s, %s::jsonb, %s, %s) RETURNING digest_id""",
                (channel.name, town, len(members), json.dumps(content, ensure_ascii=False), now, now),
            )
            row = cur.fetchone()
            assert row is not None
            digest_id = int(row[0])
            cur.execute(
                "UPDATE notify_deliveries SET digest_id = %s WHERE delivery_id = ANY(%s)",
                (digest_id, [m.delivery_id for m in members]),
            )
            if not self._send_digest(cur, channel, digest_id, content, 0, now, report):
                return

    @staticmethod
    def _digest_entry(item: Item) -> dict[str, Any]:
        return {
            "delivery_id": item.delivery_id,
            "alert_id": item.alert_id,
            "grade": item.grade,
            "content": item.content,
        }

    def _send_single(
        self, cur: psycopg.Cursor[Any], channel: Channel, item: Item, now: datetime, report: DispatchReport
    ) -> bool:
        message = message_of(item.content, item.grade, item.mentions, self.cfg.link_base)
        result = channel.send(message, item.recipient, now)
        self._record(cur, channel, item.recipient, now, result, delivery_id=item.delivery_id)
        self._finish(cur, "notify_deliveries", "delivery_id", item.delivery_id, result, item.attempts + 1, now, "sent")
        self._count(report, channel, result, 1)
        return result.outcome is not Outcome.RATE_LIMITED

    def _send_digest(
        self,
        cur: psycopg.Cursor[Any],
        channel: Channel,
        digest_id: int,
        content: dict[str, Any],
        attempts: int,
        now: datetime,
        report: DispatchReport,
    ) -> bool:
        message = message_of(content, str(content.get("grade", "yellow")), content.get("mentions") or [], None)
        result = channel.send(message, channel.name, now)
        self._record(cur, channel, channel.name, now, result, digest_id=digest_id)
        self._finish(cur, "notify_digests", "digest_id", digest_id, result, attempts + 1, now, "sent")
        if result.ok or self._gave_up(result, attempts + 1):
            state = "digested" if result.ok else "failed"
            cur.execute(
                """UPDATE notify_deliveries SET state = %s, done_at = %s, attempts = attempts + 1, last_result = %s
                   WHERE digest_id = %s""",
                (state, now, f"{result.outcome.value}: digest {digest_id}", digest_id),
            )
            if result.ok:
                report.digests += 1
                report.digested += cur.rowcount
        else:
            self._count(report, channel, result, 0)
        return result.outcome is not Outcome.RATE_LIMITED

    def _count(self, report: DispatchReport, channel: Channel, result: SendResult, n: int) -> None:
        if result.ok:
            report.sent += n
            report.by_channel[channel.name] += n
        elif result.outcome is Outcome.RATE_LIMITED:
            report.rate_limited += 1
        elif result.outcome is Outcome.DAILY_LIMIT:
            report.held += 1
        else:
            report.failed += 1

    # ---- personal channels (SMS, voice, e-mail) ---------------------------------------------------------------

    def _personal(self, cur: psycopg.Cursor[Any], channel: Channel, now: datetime, report: DispatchReport) -> None:
        cur.execute(
            """SELECT delivery_id, alert_id, grade, township, recipient, mentions, content, attempts
               FROM notify_deliveries WHERE channel = %s AND state = 'queued' AND next_attempt_at <= %s
               ORDER BY CASE grade WHEN 'red' THEN 4 WHEN 'orange' THEN 3 WHEN 'yellow' THEN 2 ELSE 1 END DESC,
                        delivery_id
               LIMIT 200 FOR UPDATE SKIP LOCKED""",
            (channel.name, now),
        )
        items = [Item(r[0], r[1], r[2], r[3], r[4], tuple(r[5]), r[6], r[7]) for r in cur.fetchall()]
        day_start = datetime.combine(now.astimezone(self.tz).date(), datetime.min.time(), self.tz)
        for item in items:
            if channel.daily_per_recipient is not None:
                cur.execute(
                    """SELECT count(*) FROM notify_attempts
                       WHERE channel = %s AND recipient = %s AND at >= %s AND result = 'ok'""",
                    (channel.name, item.recipient, day_start),
                )
                row = cur.fetchone()
                if row is not None and int(row[0]) >= channel.daily_per_recipient:
                    held = SendResult(
                        Outcome.DAILY_LIMIT, f"已达每号每日上限 {channel.daily_per_recipient} 条，明日发送"
                    )
                    self._record(cur, channel, item.recipient, now, held, delivery_id=item.delivery_id)
                    self._finish(
                        cur, "notify_deliveries", "delivery_id", item.delivery_id, held, item.attempts, now, "sent"
                    )
                    report.held += 1
                    continue
            self._send_single(cur, channel, item, now, report)
