"""What PostgreSQL's text (and jsonb) cannot hold: the NUL character. Inputs are checked before they reach the
database, so the refusal names where the character is instead of repeating the database's error."""

from __future__ import annotations

from typing import Any

__all__ = ["NUL_REASON", "nul_path"]

NUL_REASON = "must not contain the NUL character (U+0000)"


def nul_path(node: Any, path: str = "$") -> str | None:
    """Where (a JSONPath) the first text holding a NUL character is in a decoded JSON or YAML document, or None."""
    if isinstance(node, str):
        return path if "\x00" in node else None
    if isinstance(node, dict):
        for key, value in node.items():
            found = nul_path(key, f"{path}.{key}") or nul_path(value, f"{path}.{key}")
            if found is not None:
                return found
    if isinstance(node, list | tuple):
        for i, item in enumerate(node):
            found = nul_path(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None
