"""What the console's pages read: the board's page of open alerts and its counts, the map's sites, a site, the
devices' health and the readings around an alert. Writes never happen here: actions go through the same service
functions the API calls (:mod:`sentinel.alerts.service`, :mod:`sentinel.alerts.maintenance`,
:mod:`sentinel.hazards.register`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from sentinel.alerts.states import GRADES, OPEN_STATES

PAGE_SIZE = 50


def rows(cur: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@dataclass
class BoardFilter:
    sector: str | None = None
    township: str | None = None
    grade: str | None = None
    state: str | None = None
    site: str | None = None

    def __post_init__(self) -> None:
        for name in ("sector", "township", "grade", "state", "site"):
            if not getattr(self, name):
                setattr(self, name, None)
        if self.grade is not None and self.grade not in GRADES:
            raise ValueError(f"grade: {self.grade!r} is not one of {', '.join(GRADES)}")
        if self.state is not None and self.state not in OPEN_STATES:
            raise ValueError(f"state: {self.state!r} is not one of {', '.join(OPEN_STATES)}")

    def params(self) -> dict[str, Any]:
        return {
            "sector": self.sector,
            "town": self.township,
            "grade": self.grade,
            "state": self.state,
            "site": self.site,
        }


WHERE = """a.state <> 'normal'
    AND (%(sector)s::text IS NULL OR a.sector = %(sector)s) AND (%(town)s::text IS NULL OR a.township = %(town)s)
    AND (%(grade)s::text IS NULL OR a.grade = %(grade)s) AND (%(state)s::text IS NULL OR a.state = %(state)s)
    AND (%(site)s::text IS NULL OR a.site_id = %(site)s)"""


@dataclass
class Board:
    alerts: list[dict[str, Any]]
    total: int
    by_grade: dict[str, int]
    unacked: int
    oldest_unacked: datetime | None
    page: int
    pages: int
    townships: list[str] = field(default_factory=list)


def board(conn: psycopg.Connection[Any], flt: BoardFilter, page: int, page_size: int = PAGE_SIZE) -> Board:
    """One page of open alerts, worst grade first, then oldest; counts by grade and unacknowledged ones."""
    params = flt.params()
    with conn.cursor() as cur:
        cur.execute(
            f"""SELECT a.grade, count(*), count(*) FILTER (WHERE NOT a.acked),
                       min(a.raised_at) FILTER (WHERE NOT a.acked)
                FROM alerts a WHERE {WHERE} GROUP BY a.grade""",
            params,
        )
        by_grade = dict.fromkeys(GRADES, 0)
        unacked, oldest = 0, None
        for grade, n, un, first in cur.fetchall():
            by_grade[grade] = int(n)
            unacked += int(un)
            if first is not None and (oldest is None or first < oldest):
                oldest = first
        total = sum(by_grade.values())
        pages = max(1, -(-total // page_size))
        page = min(max(1, page), pages)
        cur.execute(
            f"""SELECT a.alert_id, a.rule_id, a.subject, a.site_id, s.name AS site_name, a.township, a.sector,
                       a.alert_class, a.grade, a.state, a.acked, a.raised_at, a.last_value, a.hazard_id, a.shelved_until
                FROM alerts a JOIN sites s USING (site_id) WHERE {WHERE}
                ORDER BY sentinel_grade_level(a.grade) DESC, a.raised_at, a.alert_id
                LIMIT %(limit)s OFFSET %(offset)s""",
            params | {"limit": page_size, "offset": (page - 1) * page_size},
        )
        alerts = rows(cur)
        cur.execute("SELECT DISTINCT township FROM sites ORDER BY township")
        townships = [r[0] for r in cur.fetchall()]
    return Board(alerts, total, by_grade, unacked, oldest, page, pages, townships)


def sites(conn: psycopg.Connection[Any], sector: str | None, township: str | None) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(
            """SELECT site, name, township, sector, lat, lon, operating, worst_grade, open_alerts, unacked_alerts,
                      devices FROM v_site_status WHERE (%(sector)s::text IS NULL OR sector = %(sector)s)
                 AND (%(town)s::text IS NULL OR township = %(town)s) ORDER BY site""",
            {"sector": sector or None, "town": township or None},
        )
        return rows(cur)


def townships(conn: psycopg.Connection[Any]) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT township FROM sites ORDER BY township").fetchall()]


def site(conn: psycopg.Connection[Any], site_id: str) -> dict[str, Any]:
    with conn.cursor() as cur:
        cur.execute(
            """SELECT site, name, township, sector, lat, lon, operating, worst_grade, open_alerts, unacked_alerts
               FROM v_site_status WHERE site = %s""",
            (site_id,),
        )
        found = rows(cur)
        if not found:
            raise LookupError(f"site {site_id} does not exist")
        cur.execute(
            """SELECT device, device_class, in_service, maintenance, expected_interval_s, last_status, last_status_at
               FROM v_device_status WHERE site = %s ORDER BY device""",
            (site_id,),
        )
        return found[0] | {"devices": rows(cur)}


def devices(conn: psycopg.Connection[Any], now: datetime, recent: timedelta) -> list[dict[str, Any]]:
    """Every device with whether it is offline (an open communication fault or a last status 'offline'), in
    maintenance, or never heard from (no message ever stored, whatever the device's age: ``device_heard``), and
    when it was last heard within ``recent`` (None beyond: message_log is read by time only, through its BRIN
    index; ``heard_before`` says the device was heard, earlier)."""
    with conn.cursor() as cur:
        cur.execute(
            """WITH heard AS (
                   SELECT device_id, max(received_at) AS last_heard FROM message_log
                   WHERE received_at >= %(since)s GROUP BY device_id),
               comm AS (SELECT DISTINCT device_id FROM alerts WHERE alert_class = 'comm' AND state <> 'normal')
               SELECT d.device, d.device_class, d.site_id AS site, s.name AS site_name, s.township, s.sector,
                      d.maintenance, d.in_service, h.last_heard, st.state AS last_status,
                      (c.device_id IS NOT NULL OR coalesce(st.state = 'offline', false)) AS offline,
                      (f.device_id IS NULL AND h.device_id IS NULL) AS never_heard,
                      (f.device_id IS NOT NULL AND h.device_id IS NULL) AS heard_before
               FROM devices d JOIN sites s USING (site_id)
               LEFT JOIN heard h ON h.device_id = d.device_id
               LEFT JOIN device_heard f ON f.device_id = d.device_id
               LEFT JOIN comm c ON c.device_id = d.device_id
               LEFT JOIN LATERAL (SELECT e.state FROM device_events e WHERE e.device_id = d.device_id
                                  AND e.topic_type = 'status' ORDER BY e.ts DESC LIMIT 1) st ON true
               ORDER BY d.device""",
            {"since": now - recent},
        )
        return rows(cur)


def readings_around(
    conn: psycopg.Connection[Any], device: str, metric: str, at: datetime, before: timedelta, after: timedelta
) -> list[tuple[datetime, float]]:
    cur = conn.execute(
        """SELECT r.ts, r.value FROM readings r
           JOIN devices d ON d.device_id = r.device_id JOIN metrics m ON m.metric_id = r.metric_id
           WHERE d.device = %s AND m.metric = %s AND r.ts >= %s AND r.ts <= %s ORDER BY r.ts LIMIT 2000""",
        (device, metric, at - before, at + after),
    )
    return [(ts, float(v)) for ts, v in cur.fetchall()]


def device_of_alert(conn: psycopg.Connection[Any], alert_id: int) -> dict[str, Any]:
    with conn.cursor() as cur:
        cur.execute(
            """SELECT d.device, d.device_class, d.maintenance, d.in_service, s.site_id AS site, s.name AS site_name,
                      s.township, s.sector
               FROM alerts a JOIN devices d USING (device_id) JOIN sites s ON s.site_id = d.site_id
               WHERE a.alert_id = %s""",
            (alert_id,),
        )
        found = rows(cur)
    if not found:
        raise LookupError(f"alert {alert_id} does not exist")
    return found[0]
