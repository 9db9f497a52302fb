"""Settings for a command: the root command's ``--config`` file, then the environment (settings.py does the rest).

Every ``sentinel …`` command module calls :func:`cli_settings` rather than reading the root context itself.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sentinel.settings import Settings, load_settings


def config_file(ctx: typer.Context) -> Path | None:
    """The ``--config`` given to the root command, if any."""
    obj = ctx.find_root().obj
    config = obj.get("config") if isinstance(obj, dict) else None
    return config if isinstance(config, Path) else None


def cli_settings(ctx: typer.Context) -> Settings:
    """The command's settings; logging is configured from them here, once for every command."""
    from sentinel.logs import configure_logging

    settings = load_settings(config_file(ctx))
    configure_logging(settings)
    return settings
