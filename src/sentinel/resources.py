"""Where the shipped data folders (rules/, schemas/) are: inside the installed wheel (sentinel/_data/...), or at the
root of a source checkout for an editable install."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """``rules`` or ``schemas``: the installed copy, else the checkout's top-level folder."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the {name}/ folder is neither in the installed package nor in a source checkout")
