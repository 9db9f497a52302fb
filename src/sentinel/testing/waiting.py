"""Waiting in tests for something to happen, with one generous deadline: a test fails only if it never happens
(the machine is shared, so no test asserts on how long it took)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEADLINE_S = 60.0


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = DEADLINE_S, every_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        time.sleep(every_s)


async def until(condition: Callable[[], object], what: str, timeout_s: float = DEADLINE_S) -> None:
    """:func:`wait_until` on an event loop."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await asyncio.sleep(0.01)
