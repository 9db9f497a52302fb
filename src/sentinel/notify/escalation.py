"""Escalation until someone acknowledges: per grade a chain of steps, then reminders, stopped by ack/shelve/clear.

A chain (from the channels file) is a list of steps, each ``after`` a delay from the start, to an audience
(``officer`` on duty, their shift's ``supervisor``, the department ``head``) on named channels; then, if
``remind_every`` is set, reminders at that interval to the last step's audience. An acknowledged alert that
escalates again (the lifecycle clears its acknowledgement) starts its chain over; step numbers run on, so the
steps of the first run are never raised again. State is one row per alert in
``notify_escalations`` (next step and when it is due) and one row per raised step in ``notify_escalation_steps``.

:func:`escalate_due` is one pass at the clock's ``now``: it locks due chains (``FOR UPDATE SKIP LOCKED``) and for
each first checks the alert: acknowledged, shelved, cleared or out of service stops the chain (the reason is
kept). Otherwise it raises the due step: the step row (primary key ``(alert, step)``) and the step's deliveries are
written in one transaction with the advanced pointer, so a step is raised at most once, even across a crash or two
workers; a restart resumes from the stored pointer, due times counted from the chain's start. Deliveries of a step
not yet sent when the alert is acknowledged are cancelled by the dispatcher, so acknowledging stops the chain at
once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from sentinel.notify.config import Chain, ChannelsFile
from sentinel.notify.messages import alert_content
from sentinel.notify.roster import Person, Roster
from sentinel.notify.routing import duty_for, insert_delivery

STOP_STATES = {
    "active_ack": "已确认",
    "normal": "已解除",
    "shelved": "已搁置",
    "out_of_service": "已停用",
    "suppressed": "已抑制",
}
AUDIENCE_NAMES = {"officer": "值班员", "supervisor": "带班领导", "head": "部门负责人"}


@dataclass
class EscalationReport:
    raised: list[tuple[int, int, str]] = field(default_factory=list)  # (alert, step, kind)
    stopped: list[tuple[int, str]] = field(default_factory=list)


def stop_reason(state: str, acked: bool) -> str | None:
    if acked and state != "active_unack":
        return STOP_STATES.get(state, "已确认")
    return STOP_STATES.get(state)


def _due_of(chain: Chain, started: datetime, step: int) -> datetime | None:
    if step < len(chain.steps):
        return started + chain.steps[step].after
    if chain.remind_every is None or not chain.steps:
        return None
    return started + chain.steps[-1].after + chain.remind_every * (step - len(chain.steps) + 1)


def _audience(roster: Roster | None, alert: dict[str, Any], who: str, now: datetime) -> tuple[list[Person], str]:
    duty = duty_for(roster, alert.get("township") or "", alert.get("sector") or "", now)
    if who == "head":
        return ([roster.head] if roster and roster.head else []), duty.note
    if who == "supervisor":
        return ([duty.supervisor] if duty.supervisor else []), duty.note
    return list(duty.officers), duty.note


def escalate_due(
    conn: psycopg.Connection[Any], cfg: ChannelsFile, roster: Roster | None, now: datetime, tz: ZoneInfo
) -> EscalationReport:
    report = EscalationReport()
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            """SELECT e.alert_id, e.grade, e.started_at, e.base, e.next_step, a.state, a.acked, a.township, a.sector,
                      a.site_id, a.subject, a.rule_id, a.alert_class, a.raised_at
               FROM notify_escalations e JOIN alerts a USING (alert_id)
               WHERE e.stopped_at IS NULL AND e.next_due_at <= %s
               ORDER BY e.next_due_at FOR UPDATE OF e SKIP LOCKED""",
            (now,),
        )
        names = [d.name for d in cur.description or ()]
        for row in cur.fetchall():
            esc = dict(zip(names, row, strict=True))
            alert_id = int(esc["alert_id"])
            reason = stop_reason(esc["state"], bool(esc["acked"]))
            chain = cfg.chains.get(esc["grade"])
            if reason is None and chain is None:
                reason = "该等级无升级链"
            if reason is not None:
                _stop(cur, alert_id, now, reason)
                report.stopped.append((alert_id, reason))
                continue
            assert chain is not None
            base, step = int(esc["base"]), int(esc["next_step"])
            due = _due_of(chain, esc["started_at"], step - base)
            while due is not None and due <= now:
                _raise(cur, cfg, roster, chain, esc, step, now, tz, report)
                step += 1
                due = _due_of(chain, esc["started_at"], step - base)
            if due is None:
                _stop(cur, alert_id, now, "升级链已走完", step)
                report.stopped.append((alert_id, "升级链已走完"))
            else:
                cur.execute(
                    "UPDATE notify_escalations SET next_step = %s, next_due_at = %s WHERE alert_id = %s",
                    (step, due, alert_id),
                )
    return report


def _stop(cur: psycopg.Cursor[Any], alert_id: int, now: datetime, reason: str, step: int | None = None) -> None:
    cur.execute(
        """UPDATE notify_escalations SET stopped_at = %s, stop_reason = %s, next_step = COALESCE(%s, next_step)
           WHERE alert_id = %s""",
        (now, reason, step, alert_id),
    )


def _raise(
    cur: psycopg.Cursor[Any],
    cfg: ChannelsFile,
    roster: Roster | None,
    chain: Chain,
    esc: dict[str, Any],
    step: int,
    now: datetime,
    tz: ZoneInfo,
    report: EscalationReport,
) -> None:
    alert_id = int(esc["alert_id"])
    index = step - int(esc["base"])  # the step within this run of the chain
    reminder = index >= len(chain.steps)
    spec = chain.steps[min(index, len(chain.steps) - 1)]
    kind = "reminder" if reminder else "step"
    cur.execute(
        """INSERT INTO notify_escalation_steps (alert_id, step, kind, audience, at) VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (alert_id, step) DO NOTHING""",
        (alert_id, step, kind, spec.audience, now),
    )
    if cur.rowcount == 0:
        return  # raised before (cannot happen with the row lock; kept as the guarantee)
    report.raised.append((alert_id, step, kind))
    alert = {
        "alert_id": alert_id,
        "grade": esc["grade"],
        "township": esc["township"],
        "sector": esc["sector"],
        "site_id": esc["site_id"],
        "subject": esc["subject"],
        "rule_id": esc["rule_id"],
        "alert_class": esc["alert_class"],
        "at": esc["raised_at"],
    }
    people, note = _audience(roster, alert, spec.audience, now)
    label = f"第 {index + 1} 级 → {AUDIENCE_NAMES[spec.audience]}" if not reminder else "未确认提醒"
    waited = int((now - esc["started_at"]) / timedelta(minutes=1))
    content = alert_content(
        alert, "remind" if reminder else "step", tz, f"{label}，已 {waited} 分钟未确认 {note}".strip()
    )
    event = "remind" if reminder else "step"
    for name in spec.channels:
        channel = cfg.channels[name]
        if channel.group:
            mentions = [p.mobile for p in people]
            insert_delivery(
                cur, f"esc|{alert_id}|{step}|{name}", alert, event, name, name, mentions, content, now, step
            )
            continue
        for person in people:
            if not person.reachable_on(name, channel.kind):
                continue
            address = person.email if channel.kind == "email" else person.mobile
            if not address:
                continue
            key = f"esc|{alert_id}|{step}|{name}|{address}"
            insert_delivery(cur, key, alert, event, name, address, [], content, now, step)
