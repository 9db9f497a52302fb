"""Isolate the message whose processing raises, so the stream never stops for one message.

The sink prepares a whole MQTT batch in one go (decode, admit). Should that raise, nothing in the bytes is to blame
by design (the decoder refuses bad input with a reason), so it is a defect that one message triggers: the batch is
bisected, each half prepared again, until the single message that raises is found. That message becomes a dead
letter with code ``internal`` naming the exception type; every other message of the batch goes on as usual. The
duplicate filter's pending marks of a failed attempt are rolled back first, so they do not shadow the retry.

Bisecting costs about 2·log2(n) extra attempts per poison message, paid only when something raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")
P = TypeVar("P")


class Journal(Protocol):
    def begin(self) -> None: ...
    def rollback(self) -> None: ...
    def end(self) -> None: ...


def isolate(
    items: Sequence[T],
    prepare: Callable[[list[T]], P],
    on_failure: Callable[[T, Exception], P],
    journal: Journal,
) -> list[P]:
    """``prepare(items)`` as one part when it succeeds; else the parts of the halves, recursively, and
    ``on_failure(item, exc)`` for each single item that raises. Order follows ``items``."""
    journal.begin()
    try:
        return [prepare(list(items))]
    except Exception as exc:
        journal.rollback()
        if len(items) == 1:
            return [on_failure(items[0], exc)]
    finally:
        journal.end()
    middle = len(items) // 2
    return isolate(items[:middle], prepare, on_failure, journal) + isolate(items[middle:], prepare, on_failure, journal)
