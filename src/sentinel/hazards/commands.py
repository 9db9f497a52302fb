"""``sentinel hazards …``: create, list, show, move (transitions), review (overdue escalation), stats.

Over the same register functions as the HTTP API. ``--role`` is the role the state machine checks (the CLI runs
on the server, so it is trusted to say); ``--as`` is the actor recorded in the event history.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer

from sentinel.cli_common import console, database, display_zone, table
from sentinel.display import local_time, month_of, parse_local, record
from sentinel.hazards import register
from sentinel.hazards.states import Request
from sentinel.hazards.stats import statistics

hazards_app = typer.Typer(no_args_is_help=True)
Actor = Annotated[str, typer.Option("--as", help="who acts (recorded in the event history)")]


@hazards_app.command("create")
def create(
    ctx: typer.Context,
    title: str,
    sector: Annotated[str, typer.Option(help="gas, dust, casting, charging or other")],
    township: Annotated[str, typer.Option()],
    source: Annotated[str, typer.Option(help="self_inspection, supervisory_inspection, public_report, …")],
    site: Annotated[str | None, typer.Option()] = None,
    description: str = "",
    evidence: Annotated[list[str] | None, typer.Option(help="evidence reference (repeat)")] = None,
    actor: Actor = "cli",
) -> None:
    """Record (登记) an entry from people."""
    with database(ctx) as conn:
        hazard_id = register.create(
            conn,
            title=title,
            sector=sector,
            township=township,
            source=source,
            actor=actor,
            now=datetime.now(UTC),
            description=description,
            site_id=site,
            evidence=tuple(evidence or ()),
        )
    console.print(f"hazard {hazard_id} recorded")


@hazards_app.command("list")
def list_cmd(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option()] = None,
    sector: Annotated[str | None, typer.Option()] = None,
    township: Annotated[str | None, typer.Option()] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="only items past their deadline")] = False,
) -> None:
    with database(ctx) as conn:
        rows = register.list_hazards(
            conn, datetime.now(UTC).date(), state=state, sector=sector, township=township, overdue=overdue or None
        )
    cols = ("hazard_id", "title", "sector", "township", "level", "state", "deadline", "overdue", "supervision")
    table(rows, cols, f"{len(rows)} hazards", display_zone(ctx))


@hazards_app.command("show")
def show(ctx: typer.Context, hazard_id: int) -> None:
    with database(ctx) as conn:
        hazard = register.get(conn, hazard_id, datetime.now(UTC).date())
    tz = display_zone(ctx)
    console.print(record({k: v for k, v in hazard.items() if k != "events"}, tz))
    table(hazard["events"], ("at", "actor", "from_state", "to_state", "reason", "evidence"), "events", tz)


@hazards_app.command("move")
def move(
    ctx: typer.Context,
    hazard_id: int,
    action: Annotated[str, typer.Argument(help="classify, assign, start_rectification, request_verification, …")],
    reason: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="officer or supervisor")] = "supervisor",
    level: Annotated[str | None, typer.Option(help="major or general (classify)")] = None,
    deadline: Annotated[str | None, typer.Option(help="YYYY-MM-DD (assign)")] = None,
    unit: Annotated[str | None, typer.Option(help="responsible unit (assign)")] = None,
    department: Annotated[str | None, typer.Option(help="supervising department (assign)")] = None,
    plan: Annotated[list[str] | None, typer.Option(help="KEY=TEXT of the 五落实 plan (repeat)")] = None,
    evidence: Annotated[list[str] | None, typer.Option(help="evidence reference (repeat)")] = None,
    actor: Actor = "cli",
) -> None:
    """Take one step of the closed loop."""
    try:
        when = date.fromisoformat(deadline) if deadline else None
    except ValueError as exc:
        raise typer.BadParameter(f"{deadline!r} is not YYYY-MM-DD", param_hint="--deadline") from exc
    pairs = [p.partition("=") for p in plan or []]
    req = Request(
        reason, level, when, unit, department, {k: v for k, _, v in pairs} if pairs else None, tuple(evidence or ())
    )
    with database(ctx) as conn:
        hazard = register.transition(conn, hazard_id, action, role=role, actor=actor, req=req, now=datetime.now(UTC))
    console.print(f"hazard {hazard_id}: {hazard['state']}")


@hazards_app.command("review")
def review(ctx: typer.Context) -> None:
    """Escalate supervision of overdue items now (serve does this periodically)."""
    now = datetime.now(UTC)
    with database(ctx) as conn:
        escalated = register.review_overdue(conn, now.date(), now)
    console.print(f"{len(escalated)} escalated: {escalated}")


@hazards_app.command("stats")
def stats(
    ctx: typer.Context,
    start: Annotated[
        str | None, typer.Option(help="period start, ISO date or time (display zone); default: this month")
    ] = None,
    end: Annotated[str | None, typer.Option(help="period end (exclusive); default: the end of START's month")] = None,
    by: Annotated[str, typer.Option(help="sector, township or both")] = "sector",
    level: Annotated[str | None, typer.Option(help="major or general")] = None,
) -> None:
    """Stock, increment, closed and closure rate for the period (default: this month in SENTINEL_DISPLAY_TZ)."""
    tz = display_zone(ctx)
    try:
        first = parse_local(start, tz) if start else month_of(datetime.now(UTC), tz)[0]
    except ValueError as exc:
        raise typer.BadParameter(f"{start!r} is not an ISO date or time", param_hint="--start") from exc
    try:
        last = parse_local(end, tz) if end else month_of(first, tz)[1]
    except ValueError as exc:
        raise typer.BadParameter(f"{end!r} is not an ISO date or time", param_hint="--end") from exc
    period = f"{local_time(first, tz)} – {local_time(last, tz)}"
    console.print(f"统计期 period: {period} ({tz.key})")
    with database(ctx) as conn:
        try:
            rows = statistics(conn, first, last, by, level)
        except ValueError as exc:  # our own message: `by` not known, or the period ends before it starts
            raise typer.BadParameter(str(exc)) from exc
    cols = (
        *({"sector": ("sector",), "township": ("township",)}.get(by, ("sector", "township"))),
        "stock_start",
        "increment",
        "closed",
        "stock_end",
        "closure_rate",
    )
    table(rows, cols, f"hazards {period}", tz)
