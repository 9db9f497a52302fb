"""``sentinel db …``: schema migrations, status and maintenance of the readings store."""

from __future__ import annotations

import typer
from rich.console import Console

from sentinel.cli_settings import cli_settings
from sentinel.store import migrations
from sentinel.store.database import Database, describe
from sentinel.store.retention import maintain as run_maintenance

db_app = typer.Typer(no_args_is_help=True)
console = Console()


@db_app.command()
def upgrade(ctx: typer.Context) -> None:
    """Apply pending schema migrations (idempotent: a second run changes nothing)."""
    settings = cli_settings(ctx)
    with Database.open(settings, share=True) as db:
        applied = migrations.upgrade(db.conninfo)
        with db.connect() as conn:
            report = run_maintenance(
                conn,
                db.dialect,
                retention_days=settings.retention_days,
                ahead_days=settings.partitions_ahead_days,
            )
        where = "embedded PostgreSQL" if db.embedded else describe(db.conninfo)
        if applied:
            console.print(f"{where}: applied {len(applied)} migration(s): {', '.join(applied)}")
        else:
            console.print(f"{where}: schema is current ({len(migrations.known_versions())} migrations)")
        console.print(f"readings dialect: {report.dialect}")


@db_app.command()
def status(ctx: typer.Context) -> None:
    """Show applied and pending migrations and the readings dialect."""
    settings = cli_settings(ctx)
    with Database.open(settings, share=True) as db:
        applied = set(migrations.applied_versions(db.conninfo))
        for version in migrations.known_versions():
            mark = "[green]applied[/]" if version in applied else "[yellow]pending[/]"
            console.print(f"{version:<20} {mark}")
        if applied:
            console.print(f"readings dialect: {db.dialect}")


@db_app.command()
def maintain(ctx: typer.Context) -> None:
    """Create readings partitions ahead and drop data past the retention (native dialect)."""
    settings = cli_settings(ctx)
    with Database.open(settings, share=True) as db, db.connect() as conn:
        report = run_maintenance(
            conn,
            db.dialect,
            retention_days=settings.retention_days,
            ahead_days=settings.partitions_ahead_days,
        )
    console.print(
        f"dialect {report.dialect}: {report.created} partition(s) created, "
        f"{len(report.dropped)} dropped, retention {report.retention_days} days"
    )
