"""The major-hazard register (重大事故隐患数据库) in PostgreSQL: entries, checked transitions, overdue review.

Every change appends a ``hazard_events`` row (actor, time, from, to, reason, evidence) in the transaction that
makes it; rows are never updated or deleted. Times come from the caller (``now``, ``today``) so tests and the
service can drive a fake clock. Entries come from people (:func:`create`: self-inspection, supervisory
inspection, public report, insurer inspection) or from alerts (:func:`create_from_alert`: automatically for a rule
marked ``major_hazard`` and by an officer escalating; one hazard per alert). :func:`review_overdue` raises the
supervision level of overdue items (township → county → city) and records each escalation.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import psycopg

from sentinel.errors import TransitionError
from sentinel.hazards.states import (
    SECTORS,
    SOURCES,
    STATES,
    SUPERVISION,
    Request,
    check,
    is_overdue,
    supervision_level,
)

COLUMNS = (
    "hazard_id, title, description, site_id, sector, township, source, alert_id, level, state, deadline, "
    "responsible_unit, supervising_department, supervision_level, created_at, updated_at, closed_at, plan, "
    "verification, reported_by"
)
EVENT_COLUMNS = ("event_id", "at", "actor", "from_state", "to_state", "reason", "evidence")


def _rows(cur: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _event(
    cur: psycopg.Cursor[Any],
    hazard_id: int,
    actor: str,
    before: str | None,
    after: str,
    reason: str,
    now: datetime,
    evidence: tuple[str, ...] = (),
) -> None:
    cur.execute(
        """INSERT INTO hazard_events (hazard_id, at, actor, from_state, to_state, reason, evidence)
           VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)""",
        (hazard_id, now, actor, before, after, reason, json.dumps(list(evidence), ensure_ascii=False)),
    )


def create(
    conn: psycopg.Connection[Any],
    *,
    title: str,
    sector: str,
    township: str,
    source: str,
    actor: str,
    now: datetime,
    description: str = "",
    site_id: str | None = None,
    alert_id: int | None = None,
    evidence: tuple[str, ...] = (),
) -> int:
    """Record (登记) a new entry; returns its id."""
    if source not in SOURCES:
        raise ValueError(f"source: {source!r} is not one of {', '.join(SOURCES)}")
    if sector not in SECTORS:
        raise ValueError(f"sector: {sector!r} is not one of {', '.join(SECTORS)}")
    if not title.strip() or not township.strip():
        raise ValueError("title and township: must not be empty")
    with conn.transaction(), conn.cursor() as cur:
        if site_id is not None and cur.execute("SELECT 1 FROM sites WHERE site_id = %s", (site_id,)).fetchone() is None:
            raise LookupError(f"site_id: site {site_id!r} is not in the registry")
        cur.execute(
            """INSERT INTO hazards (title, description, site_id, sector, township, source, alert_id, state,
                                    created_at, updated_at, reported_by)
               VALUES (%s, %s, %s, %s, %s, %s, %s, 'recorded', %s, %s, %s) RETURNING hazard_id""",
            (title, description, site_id, sector, township, source, alert_id, now, now, actor),
        )
        row = cur.fetchone()
        assert row is not None
        hazard_id = int(row[0])
        _event(cur, hazard_id, actor, None, "recorded", f"recorded from {source}: {title}", now, evidence)
    return hazard_id


def create_from_alert(conn: psycopg.Connection[Any], alert_id: int, actor: str, reason: str, now: datetime) -> int:
    """The hazard for this alert (created once; later calls return the same id)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            """SELECT a.hazard_id, a.rule_id, a.subject, a.site_id, a.sector, a.township, a.grade
               FROM alerts a WHERE a.alert_id = %s FOR UPDATE""",
            (alert_id,),
        )
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"alert {alert_id} does not exist")
        if row[0] is not None:
            return int(row[0])
        _, rule_id, subject, site, sector, township, grade = row
        hazard_id = create(
            conn,
            title=f"{rule_id} on {subject} ({grade})",
            description=reason,
            sector=sector if sector in SECTORS else "other",
            township=township or "",
            source="alert",
            actor=actor,
            now=now,
            site_id=site,
            alert_id=alert_id,
            evidence=(f"alert:{alert_id}",),
        )
        cur.execute("UPDATE alerts SET hazard_id = %s WHERE alert_id = %s", (hazard_id, alert_id))
    return hazard_id


def get(conn: psycopg.Connection[Any], hazard_id: int, today: date | None = None) -> dict[str, Any]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT {COLUMNS} FROM hazards WHERE hazard_id = %s", (hazard_id,))
        rows = _rows(cur)
        if not rows:
            raise LookupError(f"hazard {hazard_id} does not exist")
        cur.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM hazard_events WHERE hazard_id = %s ORDER BY event_id",
            (hazard_id,),
        )
        return _decorate(rows[0], today) | {"events": _rows(cur)}


def _decorate(row: dict[str, Any], today: date | None) -> dict[str, Any]:
    if today is not None:
        row["overdue"] = is_overdue(row["state"], row["deadline"], today)
    row["supervision"] = SUPERVISION[row["supervision_level"]]
    return row


def list_hazards(
    conn: psycopg.Connection[Any],
    today: date,
    *,
    state: str | None = None,
    sector: str | None = None,
    township: str | None = None,
    overdue: bool | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    if state is not None and state not in STATES:
        raise ValueError(f"state: unknown state {state!r}; one of {', '.join(STATES)}")
    with conn.cursor() as cur:
        cur.execute(
            f"""SELECT {COLUMNS} FROM hazards
                WHERE (%(state)s::text IS NULL OR state = %(state)s)
                  AND (%(sector)s::text IS NULL OR sector = %(sector)s)
                  AND (%(town)s::text IS NULL OR township = %(town)s)
                ORDER BY hazard_id LIMIT %(limit)s""",
            {"state": state, "sector": sector, "town": township, "limit": limit},
        )
        rows = [_decorate(r, today) for r in _rows(cur)]
    return [r for r in rows if overdue is None or r["overdue"] == overdue]


def transition(
    conn: psycopg.Connection[Any],
    hazard_id: int,
    action: str,
    *,
    role: str,
    actor: str,
    req: Request,
    now: datetime,
) -> dict[str, Any]:
    """Take ``action`` on the hazard (checked by :func:`~sentinel.hazards.states.check`); returns it after."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(f"SELECT {COLUMNS} FROM hazards WHERE hazard_id = %s FOR UPDATE", (hazard_id,))
        rows = _rows(cur)
        if not rows:
            raise LookupError(f"hazard {hazard_id} does not exist")
        hazard = rows[0]
        before = hazard["state"]
        after = check(f"hazard {hazard_id}", before, action, role, req)
        sets: dict[str, Any] = {"state": after, "updated_at": now}
        if action == "classify":
            sets["level"] = req.level
        elif action == "assign":
            sets |= {
                "deadline": req.deadline,
                "responsible_unit": req.responsible_unit,
                "supervising_department": req.supervising_department,
            }
        elif action == "start_rectification":
            sets["plan"] = json.dumps(req.plan, ensure_ascii=False)
        elif action in ("verify_pass", "verify_fail"):
            sets["verification"] = "passed" if action == "verify_pass" else "failed"
        elif action == "close":
            if hazard["verification"] != "passed":  # belt and braces: the state machine already implies it
                raise TransitionError(f"hazard {hazard_id}", before, "closed", "no passed verification on record")
            sets["closed_at"] = now
        assignments = ", ".join(f"{k} = %({k})s" for k in sets)
        cur.execute(f"UPDATE hazards SET {assignments} WHERE hazard_id = %(id)s", sets | {"id": hazard_id})
        detail = {k: v for k, v in asdict(req).items() if v and k not in ("reason", "evidence")}
        reason = f"{action}: {req.reason}"
        if detail:
            reason += " " + json.dumps(detail, default=str, ensure_ascii=False)
        _event(cur, hazard_id, actor, before, after, reason, now, req.evidence)
    return get(conn, hazard_id, now.date())


def review_overdue(conn: psycopg.Connection[Any], today: date, now: datetime) -> list[int]:
    """Escalate supervision of overdue items (never lowers it); returns the ids escalated."""
    escalated = []
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            """SELECT hazard_id, state, deadline, supervision_level FROM hazards
               WHERE state NOT IN ('verified', 'closed') AND deadline < %s FOR UPDATE""",
            (today,),
        )
        for hazard_id, state, deadline, current in cur.fetchall():
            level = supervision_level(state, deadline, today)
            if level <= current:
                continue
            cur.execute(
                "UPDATE hazards SET supervision_level = %s, updated_at = %s WHERE hazard_id = %s",
                (level, now, hazard_id),
            )
            days = (today - deadline).days
            _event(
                cur,
                hazard_id,
                "system",
                state,
                state,
                f"overdue {days} days (deadline {deadline}): supervision escalated to {SUPERVISION[level]}",
                now,
            )
            escalated.append(int(hazard_id))
    return escalated
