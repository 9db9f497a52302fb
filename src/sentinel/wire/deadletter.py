"""Dead letters: a refused input kept with everything a person needs to act on it. Storing them is the store's
job; this module only builds the record.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from sentinel.wire.decode import Rejected


class DeadLetter(msgspec.Struct, frozen=True):
    """One refused message (or batch item).

    - ``raw``: its bytes as received (a batch item's own bytes, not the whole batch)
    - ``source``: where it came from, ``mqtt:<topic>`` or ``http:<client>`` (see :func:`mqtt_source`)
    - ``received_at``: when the receiver got it (timezone-aware, UTC)
    - ``reason``: what was wrong and what was expected, e.g. ``expected a number or a boolean, got string``
    - ``path``: the field path, e.g. ``messages[3].metrics.ch4_pct_lel``; empty for the payload as a whole
    - ``code``: a :class:`~sentinel.wire.contract.RejectCode` value, for counting rejections by kind
    - ``index``: the item's index in its batch, None for a single message or a whole payload
    """

    raw: bytes
    source: str
    received_at: datetime
    reason: str
    path: str
    code: str
    index: int | None = None

    @property
    def message(self) -> str:
        """``path: reason``, the line a person reads."""
        return f"{self.path}: {self.reason}" if self.path else self.reason

    @classmethod
    def from_rejected(cls, rejected: Rejected, source: str, received_at: datetime) -> DeadLetter:
        if received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        problem = rejected.problem
        return cls(rejected.raw, source, received_at, problem.what, problem.where, str(problem.code), rejected.index)


def dead_letters(rejected: Iterable[Rejected], source: str, received_at: datetime) -> list[DeadLetter]:
    """One dead letter per refused item."""
    return [DeadLetter.from_rejected(r, source, received_at) for r in rejected]


def mqtt_source(topic: str) -> str:
    return f"mqtt:{topic}"


def http_source(client: str) -> str:
    """``client`` is who sent it: the gateway id of the bearer token, else the peer address."""
    return f"http:{client}"
