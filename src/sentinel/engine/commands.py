"""``sentinel rules …``: commands about rule packs.

- ``sentinel rules check [PATH]`` validates the packs in PATH (a file or a folder; default: the shipped packs),
  prints every problem as ``file:line: what is wrong`` and exits with code 2; a valid set prints a one-line
  summary and exits 0.
- ``sentinel rules list [PATH] [--pack P]`` shows the rules: kind, metrics, device classes, grades.
- ``sentinel rules params [PATH] [--pack P] [--typical]`` lists every number a rule uses with its source mark and
  the key that overrides it per device (``DeviceSpec.attrs``) or per site (the engine's ``site_overrides``).

The lead engineer registers :data:`rules_app` in ``sentinel.cli``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sentinel.engine.catalog import GRADE_NAMES
from sentinel.engine.loader import check_rules, default_rules_dir
from sentinel.engine.model import Param, Rule, RuleSet
from sentinel.errors import RulePackError

rules_app = typer.Typer(help="Rule packs: validate and inspect them.", no_args_is_help=True, add_completion=False)

PathArg = Annotated[Path | None, typer.Argument(help="A pack file or a folder of packs (default: the shipped packs)")]
PackOpt = Annotated[str | None, typer.Option("--pack", help="Only this pack (gas, dust, casting, charging)")]


@rules_app.callback()
def _rules() -> None:
    """Rule packs (rules/*.yaml)."""


@rules_app.command("check")
def check(path: PathArg = None) -> None:
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


def _load(path: Path | None, pack: str | None) -> list[Rule]:
    rules, problems = check_rules(path if path is not None else default_rules_dir())
    if problems:
        raise RulePackError(problems)
    chosen = [r for r in rules.rules if pack is None or r.pack == pack]
    if not chosen:
        raise typer.BadParameter(f"no rules in pack {pack!r}; packs: {', '.join(_packs(rules))}", param_hint="--pack")
    return chosen


def _packs(rules: RuleSet) -> list[str]:
    return list(dict.fromkeys(r.pack for r in rules.rules))


def _levels(rule: Rule) -> str:
    parts = []
    for level in rule.levels:
        text = (
            f"{GRADE_NAMES[level.grade]} ≥ {level.at.value:g}"
            if rule.direction == "above"
            else (f"{GRADE_NAMES[level.grade]} ≤ {level.at.value:g}")
        )
        if rule.kind in ("composite", "interlock"):
            text = GRADE_NAMES[level.grade]
        if level.for_s is not None:
            text += f" for {level.for_s.value:g} s"
        parts.append(f"{text} [{level.source[0]}]")
    return "; ".join(parts)


@rules_app.command("list")
def list_rules(path: PathArg = None, pack: PackOpt = None) -> None:
    """Show the rules: id, kind, metrics, device classes and grades (with S/T source marks)."""
    table = Table(title="Sentinel rules")
    # Ids and kinds are never broken (a wrapped id cannot be copied); the prose columns share what is left.
    table.add_column("rule", no_wrap=True)
    table.add_column("name", overflow="fold", ratio=2)
    table.add_column("kind", no_wrap=True)
    for column in ("metrics", "device classes", "grades"):
        table.add_column(column, overflow="fold", ratio=2 if column != "grades" else 3)
    for rule in _load(path, pack):
        table.add_row(
            rule.id,
            f"{rule.name_zh}\n{rule.name_en}",
            rule.kind + (" (site)" if rule.scope == "site" else ""),
            ", ".join(rule.metrics) or "(any)",
            ", ".join(rule.device_classes),
            _levels(rule),
        )
    Console().print(table)


def _params(rule: Rule) -> list[tuple[Param, str]]:
    out: list[tuple[Param, str]] = []
    for level in rule.levels:
        if rule.kind not in ("composite", "interlock"):
            unit = (
                f"× {rule.relative_to}"
                if rule.relative_to
                else ("× expected interval" if rule.kind == "staleness" else "")
            )
            out.append((level.at, unit))
            if level.clear is not None:
                out.append((level.clear, unit))
        if level.for_s is not None:
            out.append((level.for_s, "s"))
    out += [(t.at, f"× {t.relative_to}" if t.relative_to else "") for t in rule.terms]
    if rule.window_s is not None:
        out.append((rule.window_s, "s"))
    return out


@rules_app.command("params")
def list_params(
    path: PathArg = None,
    pack: PackOpt = None,
    typical: Annotated[bool, typer.Option("--typical", help="Only typical [T] values")] = False,
) -> None:
    """Every number the rules use, its source mark, and the key that overrides it per device or per site."""
    table = Table(title="Rule parameters (override with DeviceSpec.attrs or site overrides under 'key')")
    table.add_column("key", no_wrap=True)
    for column in ("default", "unit", "mark", "source"):
        table.add_column(column, overflow="fold")
    for rule in _load(path, pack):
        for param, unit in _params(rule):
            if typical and not param.typical:
                continue
            table.add_row(param.key, f"{param.value:g}", unit, param.source[0], param.source)
    Console().print(table)
