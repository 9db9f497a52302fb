"""Isolating a message whose processing raises, and the dead-letter rate per sender (no database needed)."""

from __future__ import annotations

from datetime import UTC, datetime

from sentinel.ingest.dedup import DuplicateFilter
from sentinel.ingest.isolate import isolate
from sentinel.ingest.letters import LetterLimiter
from sentinel.wire.deadletter import DeadLetter

RECEIVED = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)


def test_the_message_that_raises_is_set_aside_and_the_rest_goes_on() -> None:
    dedup = DuplicateFilter()
    attempts: list[list[int]] = []

    def prepare(part: list[int]) -> list[int]:
        attempts.append(part)
        for item in part:
            assert dedup.admit(1, item, 0)  # pending marks, as admission makes them
        if 13 in part:
            raise ZeroDivisionError("a defect")
        return part

    parts: list[list[object]] = isolate(list(range(20)), prepare, lambda item, exc: [-item, type(exc).__name__], dedup)  # type: ignore[arg-type]
    kept = [i for p in parts for i in p if isinstance(i, int) and i >= 0]
    assert kept == [i for i in range(20) if i != 13]
    assert [-13, "ZeroDivisionError"] in parts
    assert len(attempts) <= 2 * 5 + 1  # a bisection, not one attempt per message
    # The failed attempts' pending marks were rolled back: only the kept messages are pending.
    assert not dedup.admit(1, 12, 0)
    assert dedup.admit(1, 13, 0)


def _letter(source: str, n: int = 0) -> DeadLetter:
    return DeadLetter(b"x" * n, source, RECEIVED, "bad", "", "malformed_json")


def test_letters_beyond_the_rate_are_counted_then_summarised() -> None:
    now = [0.0]
    limiter = LetterLimiter(keep_bytes=8, burst=3, rate_per_s=1.0, clock=lambda: now[0])
    kept, suppressed = limiter.admit([_letter("a", 100) for _ in range(10)] + [_letter("b")], RECEIVED)
    assert [(d.source, len(d.raw), d.size) for d in kept] == [("a", 8, 100)] * 3 + [("b", 0, None)]
    assert suppressed == {"malformed_json": 7}
    now[0] = 2.0  # room again: the next batch carries the summary
    kept, suppressed = limiter.admit([], RECEIVED)
    assert [(d.code, d.source) for d in kept] == [("suppressed", "a")]
    assert kept[0].reason.startswith("7 dead letter(s) from this sender since 2026-12-05T04:00:00+00:00")
    assert not limiter.owing
