"""The ``sentinel`` command line.

Each stage owns the commands that act on it (``sentinel.<stage>.commands``); this module only composes them and
turns Sentinel's errors into one readable line and exit code 2.
"""

from __future__ import annotations

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

    from sentinel.serve import serve as run

    asyncio.run(run(cli_settings(ctx)))


@app.command()
def demo(
    ctx: typer.Context,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    headless: Annotated[bool, typer.Option(help="no live view (tests, CI)")] = False,
    via: Annotated[str, typer.Option(help="auto (MQTT when mosquitto is installed, else HTTP) or http")] = "auto",
) -> None:
    """Everything on one machine: database, broker, the service as serve runs it, and a county simulation."""
    from sentinel.demo import run_demo
    from sentinel.errors import ScenarioError

    if via not in ("auto", "http"):
        raise ScenarioError(f"--via {via!r}: expected auto or http")
    run_demo(cli_settings(ctx), duration_s=duration, headless=headless, via=via)


# Sub-apps by name: (module, attribute, help). Only the one a command line names is imported, so that
# `sentinel --help` and `sentinel rules list` do not pay for numpy, polars, scikit-learn or FastAPI.
SUBAPPS: dict[str, tuple[str, str, str]] = {
    "db": ("sentinel.store.commands", "db_app", "Database schema, maintenance and the embedded server."),
    "registry": ("sentinel.registry.commands", "registry_app", "Sites, gateways and devices."),
    "keys": ("sentinel.registry.commands", "keys_app", "API keys and roles."),
    "broker": ("sentinel.collect.commands", "broker_app", "Mosquitto configuration, passwords and ACL."),
    "anomaly": ("sentinel.engine.anomaly.commands", "anomaly_app", "Anomaly models: fit, score, refit, versions."),
    "rules": ("sentinel.engine.commands", "rules_app", "Rule packs: check, list, parameters."),
    "alerts": ("sentinel.alerts.commands", "alerts_app", "Alerts: list, acknowledge, shelve, escalate; webhooks."),
    "hazards": (
        "sentinel.hazards.commands",
        "hazards_app",
        "The major-hazard register: entries, closed loop, statistics.",
    ),
    "notify": (
        "sentinel.notify.commands",
        "notify_app",
        "Notification channels: check a channels file (secrets hidden).",
    ),
    "duty": ("sentinel.notify.commands", "duty_app", "The duty roster (值班表): load it, show who is on duty."),
}
SIM_COMMANDS = ("simulate", "replay")  # top-level commands of sentinel.sim.commands


def _named_command(argv: list[str]) -> str | None:
    """The command a command line names (its first word that is not an option or an option's value)."""
    words = iter(argv)
    for word in words:
        if word in ("--config", "-c"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _register(command: str | None) -> None:
    """Attach the sub-apps: only the named one; for the root's own help, stand-ins that carry their help only."""
    import importlib

    known = (None, "serve", "demo", *SUBAPPS, *SIM_COMMANDS)
    for name, (module, attribute, help_text) in SUBAPPS.items():
        real = command == name or command not in known  # an unknown word: attach all, click names the choices
        attached = next((g for g in app.registered_groups if g.name == name), None)
        if real and (attached is None or attached.typer_instance is _STAND_INS.get(name)):
            if attached is not None:
                app.registered_groups.remove(attached)
            app.add_typer(getattr(importlib.import_module(module), attribute), name=name, help=help_text)
        elif command is None and attached is None:
            _STAND_INS[name] = typer.Typer()  # listed in the root's help, never run
            app.add_typer(_STAND_INS[name], name=name, help=help_text)
    if command not in (*SUBAPPS, "serve", "demo") and not any(
        (c.name or getattr(c.callback, "__name__", "")) == "simulate" for c in app.registered_commands
    ):
        from sentinel.sim.commands import register as register_sim

        register_sim(app)  # simulate, replay (their bodies import what they need)


_STAND_INS: dict[str, typer.Typer] = {}


def main(argv: list[str] | None = None) -> None:
    _register(_named_command(sys.argv[1:] if argv is None else argv))
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
