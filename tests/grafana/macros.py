"""What Grafana does to a panel's SQL before PostgreSQL sees it: template variables, then the datasource's macros.

Variables follow Grafana's SQL interpolation: a multi-valued or include-All variable becomes its values quoted as
SQL strings and joined with commas (``IN ($township)``); a single-valued one is inserted raw (so panels quote it,
``'$site'``). Macros follow the PostgreSQL datasource (pkg/tsdb/grafana-postgresql-datasource/macros.go) with the
TimescaleDB option off: ``$__timeFilter(c)`` is ``c BETWEEN 'from' AND 'to'`` (RFC 3339, fractional seconds),
``$__timeGroup(c, '5m')`` is ``floor(extract(epoch from c)/300)*300``, ``$__timeGroupAlias`` adds ``AS "time"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_MACRO = re.compile(r"\$__(\w+)\(")
_INTERVAL = re.compile(r"^(\d+)(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class MacroError(ValueError):
    """A panel's SQL uses a macro or variable this expansion (and so Grafana) cannot resolve."""


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    def literal(self, at: datetime) -> str:
        return "'" + at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


@dataclass(frozen=True)
class VariableValue:
    values: tuple[str, ...]
    multi: bool  # multi-valued or include-All: quoted and comma-joined

    def render(self) -> str:
        if self.multi:
            return ",".join("'" + v.replace("'", "''") + "'" for v in self.values)
        return self.values[0]


def interval_seconds(text: str) -> int:
    found = _INTERVAL.match(text.strip().strip("'\""))
    if found is None:
        raise MacroError(f"interval {text!r} is not like '30s', '5m', '1h' or '1d'")
    return int(found.group(1)) * _SECONDS[found.group(2)]


def substitute_variables(sql: str, variables: Mapping[str, VariableValue]) -> str:
    def one(found: re.Match[str]) -> str:
        name = found.group(1) or found.group(2) or found.group(3)
        if name.startswith("__"):
            return found.group(0)  # a macro or built-in, not a template variable
        if name not in variables:
            raise MacroError(f"variable ${name} is not defined by the dashboard")
        return variables[name].render()

    return _VARIABLE.sub(one, sql)


def _split_args(sql: str, start: int) -> tuple[list[str], int]:
    """Arguments of the call whose '(' is at ``start``; returns them and the index after ')'."""
    depth, args, current, i = 0, [], [], start
    while i < len(sql):
        ch = sql[i]
        if ch == "(":
            depth += 1
            if depth > 1:
                current.append(ch)
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                return [a for a in args if a], i + 1
            current.append(ch)
        elif ch == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    raise MacroError(f"unbalanced parentheses after position {start} in {sql!r}")


def _macros(time_range: TimeRange) -> dict[str, Callable[[Sequence[str]], str]]:
    def need(args: Sequence[str], n: int, name: str) -> None:
        if len(args) < n:
            raise MacroError(f"$__{name} needs {n} argument(s), got {list(args)}")

    def time_filter(args: Sequence[str]) -> str:
        need(args, 1, "timeFilter")
        return f"{args[0]} BETWEEN {time_range.literal(time_range.start)} AND {time_range.literal(time_range.end)}"

    def time_group(args: Sequence[str]) -> str:
        need(args, 2, "timeGroup")
        seconds = interval_seconds(args[1])
        return f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}"

    return {
        "timeFilter": time_filter,
        "timeFrom": lambda args: time_range.literal(time_range.start),
        "timeTo": lambda args: time_range.literal(time_range.end),
        "timeGroup": time_group,
        "timeGroupAlias": lambda args: time_group(args) + ' AS "time"',
        "time": lambda args: f'{args[0]} AS "time"',
        "timeEpoch": lambda args: f'extract(epoch from {args[0]}) AS "time"',
    }


def expand_macros(sql: str, time_range: TimeRange) -> str:
    macros = _macros(time_range)
    out: list[str] = []
    pos = 0
    for found in _MACRO.finditer(sql):
        if found.start() < pos:
            continue
        name = found.group(1)
        if name not in macros:
            raise MacroError(f"macro $__{name} is not one the PostgreSQL datasource knows")
        args, end = _split_args(sql, found.end() - 1)
        out.append(sql[pos : found.start()])
        out.append(macros[name](args))
        pos = end
    out.append(sql[pos:])
    expanded = "".join(out)
    if "$" in expanded.replace("$$", ""):
        raise MacroError(f"unexpanded $ left in {expanded!r}")
    return expanded


def expand(sql: str, variables: Mapping[str, VariableValue], time_range: TimeRange) -> str:
    """Variables first, then macros, as Grafana does (the frontend interpolates, the backend expands macros)."""
    return expand_macros(substitute_variables(sql, variables), time_range)
