"""What officers do with alerts, over one connection: list, show, ack, shelve, unshelve, comment, escalate, and the
admin's remove-from / return-to service. The HTTP API and the CLI both call these functions.

Every change goes through :mod:`.states` (which refuses actions the state does not allow, with a reason) and
appends an ``alert_events`` row (who, when, from, to, why) in the same transaction. A missing alert is
:class:`LookupError` (HTTP 404).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg

from sentinel.alerts.lifecycle import ALERT_COLUMNS, facts_of, record_event
from sentinel.alerts.states import STATES, apply_action, derive_state
from sentinel.errors import TransitionError

EVENT_COLUMNS = (
    "event_id",
    "at",
    "device_ts",
    "actor",
    "from_state",
    "to_state",
    "from_grade",
    "to_grade",
    "reason",
    "shelved_until",
)
ACTION_TARGETS = ("ack", "shelve", "unshelve", "comment", "remove_from_service", "return_to_service")


def _rows(cur: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def list_alerts(
    conn: psycopg.Connection[Any],
    *,
    state: str | None = None,
    grade: str | None = None,
    township: str | None = None,
    sector: str | None = None,
    site: str | None = None,
    open_only: bool = False,
    limit: int = 200,
) -> list[dict[str, Any]]:
    if state is not None and state not in STATES:
        raise ValueError(f"state: unknown state {state!r}; one of {', '.join(STATES)}")
    with conn.cursor() as cur:
        cur.execute(
            f"""SELECT {ALERT_COLUMNS}, raised_at, cleared_at, acked_by, shelve_reason, last_value FROM alerts
                WHERE (%(state)s::text IS NULL OR state = %(state)s) AND (%(grade)s::text IS NULL OR grade = %(grade)s)
                  AND (%(town)s::text IS NULL OR township = %(town)s)
                  AND (%(sector)s::text IS NULL OR sector = %(sector)s)
                  AND (%(site)s::text IS NULL OR site_id = %(site)s) AND (NOT %(open)s OR state <> 'normal')
                ORDER BY alert_id DESC LIMIT %(limit)s""",
            {
                "state": state,
                "grade": grade,
                "town": township,
                "sector": sector,
                "site": site,
                "open": open_only,
                "limit": limit,
            },
        )
        return _rows(cur)


def get_alert(conn: psycopg.Connection[Any], alert_id: int) -> dict[str, Any]:
    with conn.cursor() as cur:
        cur.execute(
            f"""SELECT {ALERT_COLUMNS}, raised_at, cleared_at, acked_by, shelve_reason, last_value
                FROM alerts WHERE alert_id = %s""",
            (alert_id,),
        )
        rows = _rows(cur)
        if not rows:
            raise LookupError(f"alert {alert_id} does not exist")
        cur.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM alert_events WHERE alert_id = %s ORDER BY event_id", (alert_id,)
        )
        return rows[0] | {"events": _rows(cur)}


def _locked(cur: psycopg.Cursor[Any], alert_id: int) -> dict[str, Any]:
    cur.execute(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE alert_id = %s FOR UPDATE", (alert_id,))
    rows = _rows(cur)
    if not rows:
        raise LookupError(f"alert {alert_id} does not exist")
    return rows[0]


def act(
    conn: psycopg.Connection[Any],
    alert_id: int,
    action: str,
    actor: str,
    reason: str,
    now: datetime,
    *,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Apply an operator action; returns the alert after it. Refused actions raise TransitionError."""
    if action not in ACTION_TARGETS:
        raise TransitionError(f"alert {alert_id}", "?", action, f"unknown action; one of {', '.join(ACTION_TARGETS)}")
    with conn.transaction(), conn.cursor() as cur:
        alert = _locked(cur, alert_id)
        name, before = f"alert {alert_id}", alert["state"]
        if action in ("shelve", "comment", "remove_from_service") and not reason.strip():
            raise TransitionError(name, before, action, "a reason is required")
        facts = facts_of(alert)
        if before == "shelved" and facts.shelved_until is not None and facts.shelved_until <= now:
            before = derive_state(replace(facts, shelved_until=None), now)  # expired: judge by the real state
        new = apply_action(name, before, facts, action, now, until)
        state = derive_state(new, now)
        cur.execute(
            """UPDATE alerts SET state = %s, acked = %s, shelved_until = %s,
                      shelve_reason = CASE WHEN %s THEN %s ELSE shelve_reason END,
                      acked_at = CASE WHEN %s THEN %s ELSE acked_at END,
                      acked_by = CASE WHEN %s THEN %s ELSE acked_by END, updated_at = %s
               WHERE alert_id = %s""",
            (
                state,
                new.acked,
                new.shelved_until,
                action == "shelve",
                reason,
                action == "ack",
                now,
                action == "ack",
                actor,
                now,
                alert_id,
            ),
        )
        record_event(
            cur,
            alert_id,
            actor,
            alert["state"],
            state,
            f"{action}: {reason or action}",
            now=now,
            shelved_until=until if action == "shelve" else None,
        )
    return get_alert(conn, alert_id)


def escalate(conn: psycopg.Connection[Any], alert_id: int, actor: str, reason: str, now: datetime) -> int:
    """An officer sends the alert into the hazard register; returns the hazard id (the existing one if any)."""
    from sentinel.hazards.register import create_from_alert

    if not reason.strip():
        raise TransitionError(f"alert {alert_id}", "?", "escalate", "a reason is required")
    with conn.transaction(), conn.cursor() as cur:
        alert = _locked(cur, alert_id)
        hazard_id = create_from_alert(conn, alert_id, actor, reason, now)
        record_event(
            cur, alert_id, actor, alert["state"], alert["state"], f"escalated to hazard {hazard_id}: {reason}", now=now
        )
    return hazard_id


def expire_shelves(conn: psycopg.Connection[Any], now: datetime) -> int:
    """Shelved alerts whose expiry passed return to their real state, with an event."""
    count = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE state = 'shelved' AND shelved_until <= %s FOR UPDATE", (now,)
        )
        for alert in _rows(cur):
            state = derive_state(replace(facts_of(alert), shelved_until=None), now)
            cur.execute(
                "UPDATE alerts SET state = %s, shelved_until = NULL, updated_at = %s WHERE alert_id = %s",
                (state, now, alert["alert_id"]),
            )
            record_event(cur, alert["alert_id"], "system", "shelved", state, "shelve expired", now=now)
            count += 1
    return count
