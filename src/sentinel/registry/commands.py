"""``sentinel registry load FILE`` and ``sentinel keys create``: the registry and API keys from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sentinel.cli_settings import cli_settings
from sentinel.engine import load_rules
from sentinel.errors import RegistryFileError
from sentinel.registry.entries import load_registry_file
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
