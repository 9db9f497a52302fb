"""Engine transitions → alerts and alert events, exactly once.

:func:`apply_transitions` writes one batch's transitions in the caller's transaction. Idempotency is by key, so a
restart or replay that feeds the same transition twice changes nothing:

* every engine transition carries ``transition_key = rule|subject|device-µs|from|to|seq``, unique in
  ``alert_events``; a key already present is skipped;
* a new alert's ``alert_key`` is ``rule|subject|device-µs of the raise``; and there is one open alert per
  (rule, subject) (a partial unique index), so a raise for a subject that already has an open alert (a replay that
  starts mid-condition) moves that alert's grade instead of opening a second one.

Open alerts are looked up by (rule, subject): the subject is the device, or the site of a site-scope rule. The
alert class (column ``alert_class``) is the rule's :attr:`~sentinel.engine.model.Rule.alert_class`: ``comm`` for
staleness rules, ``warning`` (预警) for anomaly rules and rules marked ``alert: warning``, ``alarm`` (报警) otherwise.
A new process alert is *suppressed by design* when its device is in maintenance, its site is not operating, or the
device has an open comm alert; when that comm alert closes, the held-back alerts are released (event "upstream
back online"). Notifications (:mod:`.notify`) and automatic hazard entries (rules with ``major_hazard: true``) are
written in the same transaction, so they exist iff the alert change does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from sentinel.alerts.notify import enqueue_alert_notification
from sentinel.alerts.states import AlertFacts, derive_state, is_latching
from sentinel.engine.catalog import GRADE_INDEX
from sentinel.engine.model import RuleSet
from sentinel.engine.transitions import Transition

# Rows carry the alert class as ``alert_class`` (its column), and as ``kind`` too for API clients of 0.1 (deprecated,
# removed in 0.2).
ALERT_COLUMNS = (
    "alert_id, alert_key, rule_id, subject, device_id, site_id, alert_class, alert_class AS kind, grade, state, "
    "condition_active, acked, "
    "latching, shelved_until, suppressed_reason, township, sector, hazard_id"
)


@dataclass
class ApplyReport:
    new_alerts: list[int] = field(default_factory=list)
    events: int = 0
    skipped: int = 0
    townships: set[str] = field(default_factory=set)
    touched: set[int] = field(default_factory=set)


def us_to_dt(ts_us: int) -> datetime:
    return datetime.fromtimestamp(ts_us / 1e6, tz=UTC)


def facts_of(row: dict[str, Any]) -> AlertFacts:
    return AlertFacts(
        condition_active=bool(row["condition_active"]),
        acked=bool(row["acked"]),
        latching=bool(row["latching"]),
        shelved_until=row["shelved_until"],
        suppressed_reason=row["suppressed_reason"],
        out_of_service=row["state"] == "out_of_service",
    )


def transition_key(t: Transition) -> str:
    return f"{t.rule_id}|{t.subject}|{t.ts_us}|{t.from_grade}|{t.to_grade}|{t.seq}"


def open_alert(cur: psycopg.Cursor[Any], rule_id: str, subject: str) -> dict[str, Any] | None:
    cur.execute(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE rule_id = %s AND subject = %s AND state <> 'normal' FOR UPDATE",
        (rule_id, subject),
    )
    row = cur.fetchone()
    return None if row is None else dict(zip([d.name for d in cur.description or ()], row, strict=True))


def record_event(
    cur: psycopg.Cursor[Any],
    alert_id: int,
    actor: str,
    from_state: str | None,
    to_state: str,
    reason: str,
    *,
    now: datetime,
    device_ts: datetime | None = None,
    grades: tuple[str | None, str | None] = (None, None),
    key: str | None = None,
    shelved_until: datetime | None = None,
) -> None:
    """One row of an alert's history; a shelve's expiry goes in ``shelved_until`` (data, shown in each reader's
    display zone), never into ``reason``."""
    cur.execute(
        """INSERT INTO alert_events (alert_id, at, device_ts, actor, from_state, to_state, from_grade, to_grade,
                                     reason, transition_key, shelved_until)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (alert_id, now, device_ts, actor, from_state, to_state, grades[0], grades[1], reason, key, shelved_until),
    )


def _device(cur: psycopg.Cursor[Any], device: str) -> tuple[int, str, str, str, bool, bool]:
    cur.execute(
        """SELECT d.device_id, d.site_id, s.township, s.sector, d.maintenance, s.operating
           FROM devices d JOIN sites s USING (site_id) WHERE d.device = %s""",
        (device,),
    )
    row = cur.fetchone()
    if row is None:
        raise LookupError(f"transition names device {device!r}, which is not in the registry")
    return int(row[0]), row[1], row[2], row[3], bool(row[4]), bool(row[5])


def _suppression(
    cur: psycopg.Cursor[Any], alert_class: str, device_id: int, maintenance: bool, operating: bool
) -> str | None:
    if alert_class == "comm":
        return None  # the communication fault itself is always raised
    if maintenance:
        return "device in maintenance"
    if not operating:
        return "plant not operating"
    cur.execute(
        "SELECT 1 FROM alerts WHERE device_id = %s AND alert_class = 'comm' AND state <> 'normal'", (device_id,)
    )
    return "upstream device offline (communication fault open)" if cur.fetchone() else None


def apply_transitions(
    conn: psycopg.Connection[Any], transitions: list[Transition], rules: RuleSet, now: datetime
) -> ApplyReport:
    """Write ``transitions`` (one batch, in order) as alert changes; the caller owns the transaction."""
    report = ApplyReport()
    with conn.cursor() as cur:
        for t in transitions:
            key = transition_key(t)
            cur.execute("SELECT 1 FROM alert_events WHERE transition_key = %s", (key,))
            if cur.fetchone():
                report.skipped += 1
                continue
            _apply_one(conn, cur, t, key, rules, now, report)
    return report


def _apply_one(
    conn: psycopg.Connection[Any],
    cur: psycopg.Cursor[Any],
    t: Transition,
    key: str,
    rules: RuleSet,
    now: datetime,
    report: ApplyReport,
) -> None:
    rule = rules.rule(t.rule_id)
    device_ts = us_to_dt(t.ts_us)
    alert = open_alert(cur, t.rule_id, t.subject)
    reason = f"{t.move}: {t.from_grade} → {t.to_grade} (value {t.value:g}, seq {t.seq})"
    if alert is None:
        if t.to_grade == "none":
            report.skipped += 1  # a clear for an alert a replay never opened: nothing to close
            return
        _open(
            conn,
            cur,
            t,
            key,
            rule.alert_class,
            is_latching(max((lv.grade for lv in rule.levels), default=0), rule.major_hazard),
            rule.major_hazard,
            device_ts,
            reason,
            now,
            report,
        )
        return
    before = alert["state"]
    facts = facts_of(alert)
    active = t.to_grade != "none"
    grade = t.to_grade if active else alert["grade"]
    escalated = GRADE_INDEX[t.to_grade] > GRADE_INDEX[alert["grade"]] or not facts.condition_active
    acked = facts.acked and not (active and escalated)
    new = AlertFacts(active, acked, facts.latching, facts.shelved_until, facts.suppressed_reason, facts.out_of_service)
    state = derive_state(new, now)
    cur.execute(
        """UPDATE alerts SET grade = %s, state = %s, condition_active = %s, acked = %s, last_value = %s,
                  cleared_at = CASE WHEN %s THEN NULL ELSE %s END, updated_at = %s WHERE alert_id = %s""",
        (grade, state, active, acked, t.value, active, device_ts, now, alert["alert_id"]),
    )
    record_event(
        cur,
        alert["alert_id"],
        "engine",
        before,
        state,
        reason,
        now=now,
        device_ts=device_ts,
        grades=(alert["grade"], t.to_grade),
        key=key,
    )
    report.events += 1
    report.touched.add(alert["alert_id"])
    alert |= {"grade": grade, "state": state}
    if before != "suppressed" and state != "suppressed":
        enqueue_alert_notification(cur, alert, t.move, key, t.to_grade if active else alert["grade"], device_ts)
    if alert["alert_class"] == "comm" and not active:
        _release_downstream(cur, alert["device_id"], now)


def _open(
    conn: psycopg.Connection[Any],
    cur: psycopg.Cursor[Any],
    t: Transition,
    key: str,
    alert_class: str,
    latching: bool,
    major_hazard: bool,
    device_ts: datetime,
    reason: str,
    now: datetime,
    report: ApplyReport,
) -> None:
    device_id, site, township, sector, maintenance, operating = _device(cur, t.device_id)
    if t.subject != t.device_id:
        cur.execute("SELECT 1 FROM sites WHERE site_id = %s", (t.subject,))
        if (
            cur.fetchone()
        ):  # a site-scope rule (or a silent site): the subject is the site; a gateway keeps the device's
            site = t.subject
    suppressed = _suppression(cur, alert_class, device_id, maintenance, operating)
    state = derive_state(AlertFacts(True, False, latching, None, suppressed), now)
    cur.execute(
        f"""INSERT INTO alerts (alert_key, rule_id, subject, device_id, site_id, alert_class, grade, state, raised_at,
                               last_value, latching, suppressed_reason, township, sector, updated_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (alert_key) DO NOTHING RETURNING {ALERT_COLUMNS}""",
        (
            f"{t.rule_id}|{t.subject}|{t.ts_us}",
            t.rule_id,
            t.subject,
            device_id,
            site,
            alert_class,
            t.to_grade,
            state,
            device_ts,
            t.value,
            latching,
            suppressed,
            township,
            sector,
            now,
        ),
    )
    row = cur.fetchone()
    if row is None:
        report.skipped += 1
        return
    alert = dict(zip([d.name for d in cur.description or ()], row, strict=True))
    why = reason if suppressed is None else f"{reason}; suppressed: {suppressed}"
    record_event(
        cur,
        alert["alert_id"],
        "engine",
        None,
        state,
        why,
        now=now,
        device_ts=device_ts,
        grades=(None, t.to_grade),
        key=key,
    )
    report.new_alerts.append(int(alert["alert_id"]))
    report.townships.add(township)
    report.touched.add(alert["alert_id"])
    report.events += 1
    if suppressed is None:
        enqueue_alert_notification(cur, alert, "raise", key, t.to_grade, device_ts)
    if major_hazard:
        from sentinel.hazards.register import create_from_alert

        create_from_alert(conn, int(alert["alert_id"]), "engine", "rule marks its condition a major hazard", now)


def _release_downstream(cur: psycopg.Cursor[Any], device_id: int, now: datetime) -> None:
    cur.execute(
        f"""SELECT {ALERT_COLUMNS} FROM alerts WHERE device_id = %s AND state = 'suppressed'
            AND suppressed_reason LIKE 'upstream%%' FOR UPDATE""",
        (device_id,),
    )
    names = [d.name for d in cur.description or ()]
    for row in cur.fetchall():
        alert = dict(zip(names, row, strict=True))
        facts = facts_of(alert)
        state = derive_state(AlertFacts(facts.condition_active, facts.acked, facts.latching, facts.shelved_until), now)
        cur.execute(
            "UPDATE alerts SET state = %s, suppressed_reason = NULL, updated_at = %s WHERE alert_id = %s",
            (state, now, alert["alert_id"]),
        )
        record_event(cur, alert["alert_id"], "engine", "suppressed", state, "upstream back online", now=now)
        alert["state"] = state
        if state != "normal":
            enqueue_alert_notification(cur, alert, "released", f"release|{alert['alert_id']}", alert["grade"], now)
