"""``sentinel rules …``: commands about rule packs.

``sentinel rules check [PATH]`` validates the packs in PATH (a file or a folder; default: the shipped packs) and
prints every problem as ``file:line: what is wrong``, then exits with code 2; a valid set prints a one-line
summary and exits 0. The lead engineer registers :data:`rules_app` in ``sentinel.cli``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from sentinel.engine.loader import check_rules, default_rules_dir

rules_app = typer.Typer(help="Rule packs: validate them.", no_args_is_help=True, add_completion=False)


@rules_app.callback()
def _rules() -> None:
    """Rule packs (rules/*.yaml)."""


@rules_app.command("check")
def check(
    path: Annotated[
        Path | None, typer.Argument(help="A pack file or a folder of packs (default: the shipped packs)")
    ] = None,
) -> None:
    """Validate rule packs; print every problem with file and line; exit 2 when there is any."""
    target = path if path is not None else default_rules_dir()
    rules, problems = check_rules(target)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {target}", err=True)
        raise typer.Exit(2)
    packs = Counter(rule.pack for rule in rules.rules)
    summary = ", ".join(f"{pack} {n}" for pack, n in packs.items())
    typer.echo(f"{target}: {len(rules.rules)} rules in {len(packs)} packs ({summary}); no problems")
