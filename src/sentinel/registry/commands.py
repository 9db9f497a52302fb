"""``sentinel registry load FILE`` and ``sentinel keys create | list | revoke``: the registry and API keys from the
command line. A revoked key is refused by a running ``serve`` at its next request (keys are looked up per request,
see :mod:`sentinel.registry.keys`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from sentinel.cli_settings import cli_settings
from sentinel.engine import load_rules
from sentinel.errors import RegistryFileError
from sentinel.registry.entries import load_registry_file
from sentinel.registry.keys import list_keys, revoke_key
from sentinel.registry.repository import create_api_key, upsert_registry
from sentinel.store.database import Database

registry_app = typer.Typer(no_args_is_help=True)
keys_app = typer.Typer(no_args_is_help=True)
console = Console(soft_wrap=True)


@registry_app.command("load")
def load(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="YAML (sites, gateways, devices) or CSV (sites or devices)")],
) -> None:
    """Insert or update the sites, gateways and devices in FILE (idempotent)."""
    registry = load_registry_file(file)
    classes = load_rules().classes
    settings = cli_settings(ctx)
    with Database.open(settings, share=True) as db, db.connect() as conn:
        try:
            report = upsert_registry(conn, registry, known_classes=classes)
        except RegistryFileError as exc:
            raise RegistryFileError(f"{file}: {exc}") from exc
    console.print(f"{file}: {report} upserted")


@keys_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="a name for the key, e.g. duty-desk-1")],
    role: Annotated[str, typer.Option(help="gateway, officer, supervisor or admin")] = "officer",
    gateway: Annotated[str | None, typer.Option(help="the gateway id, for role gateway")] = None,
) -> None:
    """Create (or replace) an API key and print its token once; only its digest is stored."""
    if role not in ("gateway", "officer", "supervisor", "admin"):
        raise typer.BadParameter(f"unknown role {role!r}", param_hint="--role")
    if role == "gateway" and not gateway:
        raise typer.BadParameter("a gateway key needs --gateway", param_hint="--gateway")
    settings = cli_settings(ctx)
    with Database.open(settings, share=True) as db, db.connect() as conn:
        token = create_api_key(conn, name, role, gateway)
    console.print(token)


def _shown(at: datetime | None, tz: ZoneInfo) -> str:
    return "" if at is None else at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


@keys_app.command("list")
def list_command(ctx: typer.Context) -> None:
    """List API keys (names, roles, gateways, when created and revoked); never their tokens."""
    settings = cli_settings(ctx)
    tz = ZoneInfo(settings.display_tz)
    with Database.open(settings, share=True) as db, db.connect() as conn:
        rows = list_keys(conn)
    table = Table(title=f"API 密钥 API keys (时间 times: {settings.display_tz})")
    for header in ("名称 name", "角色 role", "网关 gateway", "创建 created", "吊销 revoked", "状态 state"):
        table.add_column(header, no_wrap=True)
    for row in rows:
        state = "已吊销 revoked" if row.revoked_at is not None else "有效 active"
        table.add_row(
            row.name, row.role, row.gateway or "", _shown(row.created_at, tz), _shown(row.revoked_at, tz), state
        )
    console.print(table)


@keys_app.command("revoke")
def revoke_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the key's name, as `sentinel keys list` shows it")],
) -> None:
    """Revoke an API key: a running Sentinel refuses it from its next request on."""
    settings = cli_settings(ctx)
    with Database.open(settings, share=True) as db, db.connect() as conn:
        revoked = revoke_key(conn, name)
    console.print(f"已吊销 revoked {name!r} at {_shown(revoked, ZoneInfo(settings.display_tz))}")
