"""Shared by the wire tests: the published schemas, a strict JSON reader and a path resolver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from sentinel.wire.contract import join_path, split_path

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
EXAMPLES = SCHEMAS / "examples"
KINDS = ("telemetry", "batch", "event", "status")


def load_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{kind}.schema.json").read_text(encoding="utf-8"))
    return schema


# Without rfc3339-validator, jsonschema skips format: date-time silently and the schema side would be too lenient.
assert "date-time" in Draft202012Validator.FORMAT_CHECKER.checkers, "pip install rfc3339-validator (test extra)"

VALIDATORS = {
    kind: Draft202012Validator(load_schema(kind), format_checker=Draft202012Validator.FORMAT_CHECKER) for kind in KINDS
}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_loads(raw: bytes) -> Any:
    """Parse JSON as the standard says (no NaN/Infinity); raise ValueError otherwise."""
    return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)


def schema_accepts(kind: str, raw: bytes) -> bool:
    try:
        value = strict_loads(raw)
    except ValueError:
        return False
    return bool(VALIDATORS[kind].is_valid(value))


def render_path(parts: list[str | int]) -> str:
    path = ""
    for part in parts:
        path = join_path(path, part)
    return path


def schema_error_paths(kind: str, value: Any) -> set[str]:
    """Every location the schema complains about, written like the decoder's paths (``metrics.x``, ``[3]``)."""
    paths: set[str] = set()
    pending = list(VALIDATORS[kind].iter_errors(value))
    while pending:
        error = pending.pop()
        pending.extend(error.context or ())
        paths.add(render_path(list(error.absolute_path)))
    return paths


def parent_path(path: str) -> str:
    """``messages[3].seq`` -> ``messages[3]``; ``metrics.x`` -> ``metrics``; ``[2]`` -> ``""``."""
    return render_path(split_path(path)[:-1])


def resolve(value: Any, path: str) -> tuple[bool, Any]:
    """Follow a decoder path into a JSON value: (found, the value there)."""
    current = value
    for part in split_path(path):
        if isinstance(part, int):
            if not isinstance(current, list) or part >= len(current):
                return False, None
        elif not isinstance(current, dict) or part not in current:
            return False, None
        current = current[part]
    return True, current
