"""``sentinel notify check FILE`` and ``sentinel duty load FILE`` / ``sentinel duty now``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

notify_app = typer.Typer(no_args_is_help=True)
duty_app = typer.Typer(no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(notify_app, name="notify", help="Notification channels: check a channels file (secrets hidden).")
    app.add_typer(duty_app, name="duty", help="The duty roster (值班表): load it, show who is on duty.")


@notify_app.command("check")
def check(file: Annotated[Path, typer.Argument(help="channels YAML file")]) -> None:
    """Validate a channels file and print what it configures, secrets replaced by ***."""
    from sentinel.notify.config import load

    cfg = load(file)
    typer.echo(json.dumps(cfg.describe(), ensure_ascii=False, indent=2, default=str))
    typer.echo(f"✓ {len(cfg.channels)} 个渠道, {len(cfg.webhooks)} 个 webhook, {len(cfg.chains)} 条升级链")


@duty_app.command("load")
def load(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="roster YAML or CSV")]) -> None:
    """Load a roster file (YAML or CSV) into the database; the newest load replaces the previous roster."""
    from sentinel.cli_settings import cli_settings
    from sentinel.notify import roster
    from sentinel.store.database import Database, connect

    settings = cli_settings(ctx)
    parsed = roster.load_file(file, settings.display_tz)
    with Database.open(settings, share=True) as db, connect(db.conninfo) as conn:
        roster.save(conn, parsed, str(file), datetime.now(UTC))
    overrides = len(parsed.overrides)
    typer.echo(
        f"✓ 值班表已加载: {len(parsed.shifts)} 个班次, {overrides} 个特殊日期, 乡镇: {', '.join(parsed.townships())}"
    )


@duty_app.command("now")
def now(
    ctx: typer.Context,
    township: Annotated[str | None, typer.Option(help="one township (default: all and the county)")] = None,
    sector: Annotated[str, typer.Option(help="sector, e.g. gas")] = "",
    at: Annotated[datetime | None, typer.Option(help="another moment (ISO 8601)")] = None,
) -> None:
    """Who is on duty now, per township; a township without its own shift shows the county fallback."""
    from sentinel.cli_settings import cli_settings
    from sentinel.errors import NotifyConfigError
    from sentinel.notify import roster
    from sentinel.store.database import Database, connect

    settings = cli_settings(ctx)
    with Database.open(settings, share=True) as db, connect(db.conninfo) as conn:
        current = roster.stored(conn, settings.display_tz)
    if current is None:
        raise NotifyConfigError("duty roster: none loaded; run `sentinel duty load FILE`")
    moment = (at.replace(tzinfo=current.tz) if at and at.tzinfo is None else at) or datetime.now(UTC)
    typer.echo(f"值班 @ {moment.astimezone(current.tz):%Y-%m-%d %H:%M} ({current.timezone})")
    for town in [township] if township else [*current.townships(), ""]:
        duty = current.on_duty(town, sector, moment)
        officers = "、".join(f"{p.name}({p.mobile})" for p in duty.officers) or "无"
        boss = f"{duty.supervisor.name}({duty.supervisor.mobile})" if duty.supervisor else "无"
        shift = duty.shift.name if duty.shift else "无班次"
        note = f"  ⚠ {duty.note}" if duty.fallback else ""
        typer.echo(f"{town or roster.COUNTY}: {shift} — 值班 {officers}; 带班 {boss}{note}")
