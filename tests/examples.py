"""How many examples a property test tries, by Hypothesis settings profile.

Two profiles, registered in tests/conftest.py: ``ci`` (what `.ci/run` selects with ``--hypothesis-profile=ci``)
runs every property at its full count; ``dev``, the default for a plain ``python -m pytest``, runs a third of it,
so a developer's run stays short while CI keeps the full strength. A test states its full count through
:func:`examples`; a test that states none gets the profile's own ``max_examples`` (100 in ci, 34 in dev).
"""

from __future__ import annotations

from hypothesis import settings

FULL = 100  # the ci profile's max_examples: Hypothesis's default
DEV = 34


def examples(full: int) -> int:
    """``full`` under the ci profile; scaled like the profile's max_examples otherwise (never under 10, or ``full``
    when that is smaller)."""
    current = settings.default  # the loaded profile (None only while Hypothesis itself is importing)
    scaled = full * (current.max_examples if current is not None else FULL) // FULL
    return max(scaled, min(full, 10))
