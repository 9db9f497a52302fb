"""Chattering and flood detection, with reports in ``alert_reports`` (and a notification each).

* Duty desk: the township (乡镇) of the alert's site; each township's duty officers watch their own alerts.
* Flood: more than :data:`FLOOD_LIMIT` (10) new alerts raised within :data:`FLOOD_WINDOW_S` (10 minutes, device
  time) at one desk. Reported once per desk and 10-minute bucket (``report_key = flood|desk|bucket``).
* Chattering: a (rule, subject) with at least :data:`CHATTER_LIMIT` engine transitions within
  :data:`CHATTER_WINDOW_S` before its latest one (ISA-18.2's rule of thumb, three or more per minute, taken a
  little wider), counted across its alerts, since a non-latching rule opens a new alert per raise. Reported once
  per (rule, subject) and minute bucket.

Both run in the transaction that wrote the alerts (so a replay does not report twice: the report keys are unique).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from sentinel.alerts.lifecycle import ApplyReport, apply_transitions
from sentinel.alerts.notify import enqueue
from sentinel.alerts.silence import SilenceGroups
from sentinel.engine import Engine, RuleSet, Transition

FLOOD_LIMIT = 10
FLOOD_WINDOW_S = 600
CHATTER_LIMIT = 5
CHATTER_WINDOW_S = 60


def detect_floods_and_chatter(conn: psycopg.Connection[Any], report: ApplyReport, now: datetime) -> int:
    """Write flood and chatter reports the batch behind ``report`` caused; returns how many were new."""
    added = 0
    with conn.cursor() as cur:
        for desk in sorted(report.townships):
            cur.execute(
                """SELECT max(raised_at) FROM alerts WHERE township = %s AND alert_id = ANY(%s)""",
                (desk, report.new_alerts),
            )
            row = cur.fetchone()
            if row is None or row[0] is None:
                continue
            latest: datetime = row[0]
            cur.execute(
                """SELECT count(*), min(raised_at) FROM alerts WHERE township = %s
                   AND raised_at > %s - make_interval(secs => %s) AND raised_at <= %s""",
                (desk, latest, FLOOD_WINDOW_S, latest),
            )
            count, start = cur.fetchone() or (0, None)
            if count > FLOOD_LIMIT and start is not None:
                bucket = int(latest.timestamp()) // FLOOD_WINDOW_S
                added += _report(cur, "flood", f"flood|{desk}|{bucket}", desk, None, start, latest, int(count))
        for alert_id in sorted(report.touched):
            # By (rule, subject), not by alert: a non-latching rule that chatters opens a new alert each time.
            cur.execute(
                """WITH me AS (SELECT a.rule_id, a.subject, a.township,
                                      (SELECT max(device_ts) FROM alert_events WHERE alert_id = a.alert_id) AS latest
                               FROM alerts a WHERE a.alert_id = %s)
                   SELECT me.township, count(e.*), min(e.device_ts), max(e.device_ts), me.rule_id, me.subject
                   FROM me JOIN alerts a ON a.rule_id = me.rule_id AND a.subject = me.subject
                   JOIN alert_events e ON e.alert_id = a.alert_id
                   WHERE e.transition_key IS NOT NULL AND e.device_ts > me.latest - make_interval(secs => %s)
                   GROUP BY me.township, me.rule_id, me.subject""",
                (alert_id, CHATTER_WINDOW_S),
            )
            row = cur.fetchone()
            if row is not None and row[1] >= CHATTER_LIMIT:
                bucket = int(row[3].timestamp()) // CHATTER_WINDOW_S
                key = f"chatter|{row[4]}|{row[5]}|{bucket}"
                added += _report(cur, "chatter", key, row[0], alert_id, row[2], row[3], int(row[1]))
    return added


def _report(
    cur: psycopg.Cursor[Any],
    report_type: str,
    key: str,
    desk: str,
    alert_id: int | None,
    start: datetime,
    end: datetime,
    count: int,
) -> int:
    cur.execute(
        """INSERT INTO alert_reports (report_type, report_key, desk, alert_id, window_start, window_end, count)
           VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (report_key) DO NOTHING""",
        (report_type, key, desk, alert_id, start, end, count),
    )
    if cur.rowcount:
        payload = {
            "type": "report",
            "report_type": report_type,
            "kind": report_type,  # the old name of report_type: deprecated, removed in 0.2
            "desk": desk,
            "alert_id": alert_id,
            "count": count,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
        }
        enqueue(cur, f"report.{report_type}", key, payload, "orange", "", desk)
    return cur.rowcount


def list_reports(
    conn: psycopg.Connection[Any], report_type: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Reports newest first, of one type (``chatter`` or ``flood``) or all. Rows carry the type as ``report_type``
    (its column), and as ``kind`` too for API clients of 0.1 (deprecated, removed in 0.2)."""
    rows = conn.execute(
        """SELECT report_id, report_type, desk, alert_id, window_start, window_end, count
           FROM alert_reports WHERE %s::text IS NULL OR report_type = %s ORDER BY report_id DESC LIMIT %s""",
        (report_type, report_type, limit),
    ).fetchall()
    names = ("report_id", "report_type", "desk", "alert_id", "window_start", "window_end", "count")
    return [dict(zip(names, r, strict=True)) | {"kind": r[1]} for r in rows]


class AlertWriter:
    """What the engine runner calls for each batch's transitions (inside its transaction): communication faults of a
    silent site or gateway folded into one alert (:mod:`.silence`), the alert lifecycle, then the flood and chatter
    reports those changes caused. One per runner: the silence groups it holds follow the open unit alerts."""

    def __init__(self) -> None:
        self.silence = SilenceGroups()

    def __call__(
        self, conn: psycopg.Connection[Any], records: list[Transition], rules: RuleSet, now: datetime, engine: Engine
    ) -> None:
        records = self.silence.regroup(conn, records, engine)
        detect_floods_and_chatter(conn, apply_transitions(conn, records, rules, now), now)
