"""The ``sentinel`` command line.

Each stage owns the commands that act on it (``sentinel.<stage>.commands``); this module only composes them and
turns Sentinel's errors into one readable line and exit code 2.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer

from sentinel.cli_settings import cli_settings
from sentinel.errors import SentinelError

app = typer.Typer(
    name="sentinel",
    help="Real-time risk monitoring and early warning for work safety.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML settings file (else $SENTINEL_CONFIG)", exists=False),
    ] = None,
) -> None:
    ctx.obj = {"config": config}


@app.command()
def serve(ctx: typer.Context) -> None:
    """Run ingest (MQTT and HTTP), the engine and the HTTP API until Ctrl-C or SIGTERM."""
    import asyncio

    from sentinel.service import serve as run
    from sentinel.store.database import Database

    settings = cli_settings(ctx)
    with Database.open(settings) as db:
        asyncio.run(run(settings, db))


@functools.cache
def _register() -> None:
    # Imported here so that `sentinel --help` stays fast.
    from sentinel.alerts.commands import alerts_app
    from sentinel.collect.commands import broker_app
    from sentinel.engine.anomaly.commands import anomaly_app
    from sentinel.engine.commands import rules_app
    from sentinel.hazards.commands import hazards_app
    from sentinel.registry.commands import keys_app, registry_app
    from sentinel.store.commands import db_app

    app.add_typer(db_app, name="db", help="Database schema, maintenance and the embedded server.")
    app.add_typer(registry_app, name="registry", help="Sites, gateways and devices.")
    app.add_typer(keys_app, name="keys", help="API keys and roles.")
    app.add_typer(broker_app, name="broker", help="Mosquitto configuration, passwords and ACL.")
    app.add_typer(anomaly_app, name="anomaly", help="Anomaly models: fit and score.")
    app.add_typer(rules_app, name="rules", help="Rule packs: check, list, parameters.")
    app.add_typer(alerts_app, name="alerts", help="Alerts: list, acknowledge, shelve, escalate; webhooks.")
    app.add_typer(hazards_app, name="hazards", help="The major-hazard register: entries, closed loop, statistics.")
    from sentinel.sim.commands import register as register_sim

    register_sim(app)  # simulate, replay, demo
    __import__("sentinel.notify.commands", fromlist=["register"]).register(app)  # notify, duty (issue 16)


def main(argv: list[str] | None = None) -> None:
    _register()
    try:
        # standalone_mode=False: click returns a command's exit code instead of exiting, and lets our errors out.
        code = app(args=argv, standalone_mode=False)
    except SentinelError as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except typer.Abort:
        raise SystemExit(1) from None
    except typer.TyperException as exc:  # usage errors: typer's own (vendored) click exceptions
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        raise SystemExit(getattr(exc, "exit_code", 2)) from None
    raise SystemExit(code if isinstance(code, int) else 0)
