"""Reading YAML nodes with their line numbers, collecting every problem instead of stopping at the first.

The rule-pack loader walks the composed node tree (``yaml.compose``) rather than the loaded Python values so that
each :class:`~sentinel.errors.Problem` can say ``file:line``. Misspelt keys get the closest valid key as a hint.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable

import yaml

from sentinel.errors import Problem

Node = yaml.Node
SOURCE_MARK = re.compile(r"^(S|T)(\s*[:(,].*)?$", re.DOTALL)


class NodeReader:
    """Typed access to YAML nodes of one file; wrong shapes become problems, not exceptions."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def where(self, node: Node) -> str:
        return f"{self.file}:{node.start_mark.line + 1}"

    def error(self, node: Node, what: str) -> None:
        self.problems.append(Problem(self.where(node), what))

    def mapping(self, node: Node, allowed: Iterable[str], required: Iterable[str], what: str) -> dict[str, Node] | None:
        """The keys of a mapping node; unknown keys (with a suggestion) and missing keys are reported."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping, got {_shape(node)}")
            return None
        allowed = list(allowed)
        found: dict[str, Node] = {}
        suggested = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in found:
                self.error(key_node, f"duplicate key {key!r} in {what}")
            elif key not in allowed:
                hint = suggest(key, allowed)
                suggested.add(hint.split("'")[1] if hint else "")
                self.error(key_node, f"unknown key {key!r} in {what}{hint}")
            found[key] = value_node
        for key in required:
            if key not in found and key not in suggested:  # a misspelt key was reported already
                self.error(node, f"{what} is missing the key {key!r}")
        return found

    def sequence(self, node: Node, what: str) -> list[Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what} must be a list, got {_shape(node)}")
            return []
        return list(node.value)

    def string(self, node: Node, what: str) -> str | None:
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":str") and node.value.strip():
            return str(node.value)
        self.error(node, f"{what} must be a non-empty string, got {_shape(node)}")
        return None

    def number(self, node: Node, what: str, minimum: float | None = None) -> float | None:
        if isinstance(node, yaml.ScalarNode) and (node.tag.endswith(":int") or node.tag.endswith(":float")):
            try:
                value = float(node.value.replace("_", ""))
            except ValueError:
                value = float("nan")
            if not math.isfinite(value):
                self.error(node, f"{what} must be a finite number, got {node.value!r}")
                return None
            if minimum is not None and value < minimum:
                self.error(node, f"{what} must be at least {minimum:g}, got {node.value}")
                return None
            return value
        self.error(node, f"{what} must be a number, got {_shape(node)}")
        return None

    def boolean(self, node: Node, what: str) -> bool | None:
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":bool"):
            return str(node.value).lower() in ("true", "yes", "on")
        self.error(node, f"{what} must be true or false, got {_shape(node)}")
        return None

    def choice(self, node: Node, what: str, choices: Iterable[str]) -> str | None:
        text = self.string(node, what)
        if text is None:
            return None
        choices = list(choices)
        if text not in choices:
            self.error(node, f"{what} {text!r} is not one of {', '.join(choices)}{suggest(text, choices)}")
            return None
        return text

    def strings(self, node: Node, what: str) -> list[tuple[str, Node]]:
        items = []
        for item in self.sequence(node, what):
            text = self.string(item, f"each entry of {what}")
            if text is not None:
                items.append((text, item))
        return items

    def source(self, node: Node, what: str) -> str | None:
        """A DOMAIN.md source mark: ``S`` (sourced) or ``T`` (typical), optionally followed by ``: citation``."""
        text = self.string(node, what)
        if text is not None and not SOURCE_MARK.match(text.strip()):
            self.error(node, f"{what} must start with the mark S (sourced) or T (typical), got {text!r}")
            return None
        return text.strip() if text else None


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _shape(node: Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    tag = node.tag.rsplit(":", 1)[-1]
    names = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean", "null": "nothing"}
    return f"{names.get(tag, tag)} {node.value!r}" if tag != "null" else "nothing"
