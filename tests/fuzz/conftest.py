"""Fuzzing budget: small by default (CI), large on demand.

``SENTINEL_FUZZ=large python -m pytest tests/fuzz`` runs each property for 20,000 examples (about ten minutes per
property on one core); the default runs 150. ``SENTINEL_FUZZ_EXAMPLES=N`` sets any other budget. Every run prints
how many cases each property tried (``-s`` to see it).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_BUDGETS = {"small": 150, "large": 20_000}
LARGE = os.environ.get("SENTINEL_FUZZ") == "large"
EXAMPLES = int(os.environ.get("SENTINEL_FUZZ_EXAMPLES") or _BUDGETS[os.environ.get("SENTINEL_FUZZ", "small")])
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
#: pytest-timeout's limit for one fuzz test: none for a large run.
TIMEOUT_S = 0 if LARGE or "SENTINEL_FUZZ_EXAMPLES" in os.environ else 300
