"""``sentinel alerts …``: list, show, ack, shelve, unshelve, comment, escalate, reports, webhooks, deliver.

The same service functions as the HTTP API (:mod:`sentinel.alerts.actions`); ``--as`` names who acts (the event
row's actor). Refused actions print the reason and exit 2 like every Sentinel error.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from sentinel.alerts import actions as service
from sentinel.alerts.notify import WebhookDelivery, add_webhook
from sentinel.alerts.watch import list_reports
from sentinel.alerts.words import event_reason
from sentinel.cli_common import console, database, display_zone, table
from sentinel.cli_settings import cli_settings
from sentinel.display import record
from sentinel.store.database import Database

alerts_app = typer.Typer(no_args_is_help=True)
Actor = Annotated[str, typer.Option("--as", help="who acts (recorded in the event history)")]
Reason = Annotated[str, typer.Option(help="why (recorded in the event history)")]


@alerts_app.command("list")
def list_cmd(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="e.g. active_unack, shelved")] = None,
    grade: Annotated[str | None, typer.Option(help="red, orange, yellow or blue")] = None,
    township: Annotated[str | None, typer.Option()] = None,
    sector: Annotated[str | None, typer.Option()] = None,
    open_only: Annotated[bool, typer.Option("--open", help="only alerts not back to normal")] = False,
    limit: int = 50,
) -> None:
    """Alerts, newest first."""
    with database(ctx) as conn:
        rows = service.list_alerts(
            conn, state=state, grade=grade, township=township, sector=sector, open_only=open_only, limit=limit
        )
    cols = ("alert_id", "rule_id", "subject", "township", "grade", "state", "raised_at")
    table(rows, cols, f"{len(rows)} alerts", display_zone(ctx))


@alerts_app.command("show")
def show(ctx: typer.Context, alert_id: int) -> None:
    """One alert and its event history (each reason in words, Chinese, as the console shows it)."""
    with database(ctx) as conn:
        alert = service.get_alert(conn, alert_id)
    tz = display_zone(ctx)
    console.print(record({k: v for k, v in alert.items() if k != "events"}, tz))
    columns = ("at", "actor", "from_state", "to_state", "from_grade", "to_grade", "reason", "shelved_until")
    events = [{**event, "reason": event_reason("zh", event["reason"])} for event in alert["events"]]
    table(events, columns, "events", tz)


def _act(
    ctx: typer.Context, alert_id: int, action: str, actor: str, reason: str, until: datetime | None = None
) -> None:
    with database(ctx) as conn:
        alert = service.act(conn, alert_id, action, actor, reason, datetime.now(UTC), until=until)
    console.print(f"alert {alert_id}: {alert['state']}")


@alerts_app.command("ack")
def ack(ctx: typer.Context, alert_id: int, actor: Actor = "cli", reason: Reason = "") -> None:
    """Acknowledge."""
    _act(ctx, alert_id, "ack", actor, reason)


@alerts_app.command("shelve")
def shelve(
    ctx: typer.Context,
    alert_id: int,
    reason: Reason,
    minutes: Annotated[float, typer.Option(min=1, help="how long")] = 60,
    actor: Actor = "cli",
) -> None:
    """Shelve for MINUTES with a reason."""
    _act(ctx, alert_id, "shelve", actor, reason, datetime.now(UTC) + timedelta(minutes=minutes))


@alerts_app.command("unshelve")
def unshelve(ctx: typer.Context, alert_id: int, actor: Actor = "cli", reason: Reason = "") -> None:
    """Return a shelved alert to its real state."""
    _act(ctx, alert_id, "unshelve", actor, reason)


@alerts_app.command("comment")
def comment(ctx: typer.Context, alert_id: int, reason: Reason, actor: Actor = "cli") -> None:
    """Add a note to the alert's history."""
    _act(ctx, alert_id, "comment", actor, reason)


@alerts_app.command("escalate")
def escalate(ctx: typer.Context, alert_id: int, reason: Reason, actor: Actor = "cli") -> None:
    """Enter the alert in the hazard register."""
    with database(ctx) as conn:
        hazard_id = service.escalate(conn, alert_id, actor, reason, datetime.now(UTC))
    console.print(f"alert {alert_id} → hazard {hazard_id}")


@alerts_app.command("reports")
def reports(
    ctx: typer.Context,
    report_type: Annotated[
        str | None, typer.Option("--type", "--kind", help="chatter or flood (--kind: its old name, until 0.2)")
    ] = None,
) -> None:
    """Chattering and flood reports."""
    with database(ctx) as conn:
        rows = list_reports(conn, report_type)
    cols = ("report_id", "report_type", "desk", "alert_id", "window_start", "window_end", "count")
    table(rows, cols, "reports", display_zone(ctx))


@alerts_app.command("webhook")
def webhook(
    ctx: typer.Context,
    name: str,
    url: str,
    secret: Annotated[str, typer.Option(help="HMAC-SHA256 key shared with the receiver")],
    grade: Annotated[list[str] | None, typer.Option(help="route only these grades (repeat)")] = None,
    sector: Annotated[list[str] | None, typer.Option(help="route only these sectors (repeat)")] = None,
    township: Annotated[list[str] | None, typer.Option(help="route only these townships (repeat)")] = None,
) -> None:
    """Create or replace a webhook and its routes."""
    with database(ctx) as conn:
        webhook_id = add_webhook(conn, name, url, secret, grades=grade, sectors=sector, townships=township)
    console.print(f"webhook {name} (id {webhook_id})")


@alerts_app.command("deliver")
def deliver(ctx: typer.Context) -> None:
    """Send the notifications that are due now (serve does this continuously)."""
    with Database.open(cli_settings(ctx), share=True) as db:
        delivered, failed = WebhookDelivery(db.conninfo).deliver_due()
    console.print(f"{delivered} delivered, {failed} failed (retried later)")
