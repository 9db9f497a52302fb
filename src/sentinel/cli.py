"""The ``sentinel`` command line.

Each stage owns the commands that act on it (``sentinel.<stage>.commands``); this module only composes them and
turns Sentinel's errors into one readable line and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

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


def _register() -> None:
    # Imported here so that `sentinel --help` stays fast and a broken optional stage cannot hide the others.
    from sentinel.store.commands import db_app

    app.add_typer(db_app, name="db", help="Database schema and the embedded server.")


def main(argv: list[str] | None = None) -> None:
    _register()
    try:
        app(args=argv, standalone_mode=False)
    except SentinelError as exc:
        print(f"sentinel: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        raise SystemExit(1) from None
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            raise SystemExit(2) from None
        raise
