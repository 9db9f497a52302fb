"""Where the labelled development data (SKAB, NAB) lies: ``../shared/data`` beside the checkout.

The benches and tests that score detectors read it. A checkout may also be a git worktree inside a folder of
worktrees, so the folders above the checkout are searched upward for ``shared/data``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["shared_data"]


def shared_data(inside: str | Path) -> Path:
    """``shared/data`` in the nearest folder above ``inside`` (a file or folder of the checkout) that holds one; else
    where it would be beside the checkout (the folder with ``pyproject.toml``), so a caller's "not found" names it."""
    here = Path(inside).resolve()
    for folder in here.parents:
        if (folder / "shared" / "data").is_dir():
            return folder / "shared" / "data"
    checkout = next((p for p in here.parents if (p / "pyproject.toml").is_file()), here.parent)
    return checkout.parent / "shared" / "data"
