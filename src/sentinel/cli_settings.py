"""Settings for a command: the root command's ``--config`` file, then the environment (settings.py does the rest).

Every ``sentinel …`` command module calls :func:`cli_settings` rather than reading the root context itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sentinel.settings import Settings


def config_file(ctx: typer.Context) -> Path | None:
    """The ``--config`` given to the root command, if any."""
    obj = ctx.find_root().obj
    config = obj.get("config") if isinstance(obj, dict) else None
    return config if isinstance(config, Path) else None


def cli_settings(ctx: typer.Context) -> Settings:
    """The command's settings; logging is configured from them here, once for every command."""
    from sentinel.logs import configure_logging
    from sentinel.settings import load_settings  # here: pydantic-settings is not needed for `--help`

    settings = load_settings(config_file(ctx))
    configure_logging(settings)
    return settings
