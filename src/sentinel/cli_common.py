"""What the command modules of the service's records share: a database connection for the command, the display
zone, and tables for a person.

``sentinel alerts …`` and ``sentinel hazards …`` (and any later command module over the database) use these, so a
table looks the same and a time is shown in the same zone whichever command prints it. It sits just above
:mod:`sentinel.store` in the layers (pyproject.toml), below every package with commands that read records.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from sentinel.cli_settings import cli_settings
from sentinel.display import cell, zone_note
from sentinel.store.database import Database

console = Console(soft_wrap=True)


@contextmanager
def database(ctx: typer.Context) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the database the command's settings name (shared with a running Sentinel); a record the
    command names that does not exist (LookupError) is a bad parameter, told in the error's own words."""
    with Database.open(cli_settings(ctx), share=True) as db, db.connect() as conn:
        try:
            yield conn
        except LookupError as exc:
            raise typer.BadParameter(str(exc).strip("'\"")) from exc


def display_zone(ctx: typer.Context) -> ZoneInfo:
    """SENTINEL_DISPLAY_TZ: the zone every time a person reads is shown in."""
    return ZoneInfo(cli_settings(ctx).display_tz)


def table(rows: list[dict[str, Any]], columns: tuple[str, ...], title: str, tz: ZoneInfo) -> None:
    """Rows as a table for a person: times in the display zone (named in the caption)."""
    out = Table(title=title, caption=zone_note(tz))
    for c in columns:
        out.add_column(c)
    for row in rows:
        out.add_row(*(cell(row.get(c), tz) for c in columns))
    console.print(out)
