"""Dead letters: a refused input kept with everything a person needs to act on it. Storing them is the store's
job; this module only builds the record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec

from sentinel.wire.decode import Rejected


class DeadLetter(msgspec.Struct, frozen=True):
    """One refused message (or batch item).

    - ``raw``: its bytes as received (a batch item's own bytes, not the whole batch)
    - ``source``: where it came from, ``mqtt:<topic>`` or ``http:<client>`` (see :func:`mqtt_source`); for an
      admitted message the database refused after its transport was forgotten (a spool replay),
      ``device:<device>`` (see :func:`device_source`)
    - ``received_at``: when the receiver got it (timezone-aware, UTC)
    - ``reason``: what was wrong and what was expected, e.g. ``expected a number or a boolean, got string``
    - ``path``: the field path, e.g. ``messages[3].metrics.ch4_pct_lel``; empty for the payload as a whole
    - ``code``: a :class:`~sentinel.wire.contract.RejectCode` value, an admission code (``unknown_device``...) or
      :data:`STORE_REFUSED`, for counting rejections by kind
    - ``index``: the item's index in its batch, None for a single message or a whole payload
    - ``size`` and ``sha256``: the size and hash of the bytes as received when ``raw`` keeps only a prefix of them
      (:meth:`capped`); None when ``raw`` is whole
    """

    raw: bytes
    source: str
    received_at: datetime
    reason: str
    path: str
    code: str
    index: int | None = None
    size: int | None = None
    sha256: bytes | None = None

    def capped(self, max_bytes: int) -> DeadLetter:
        """This letter keeping at most ``max_bytes`` of its bytes, plus their full size and SHA-256: a refused
        10 MB payload must not cost 10 MB of database (issue 13)."""
        if len(self.raw) <= max_bytes or self.size is not None:
            return self
        return msgspec.structs.replace(
            self, raw=self.raw[:max_bytes], size=len(self.raw), sha256=hashlib.sha256(self.raw).digest()
        )

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


#: The code of a dead letter for a message whose processing raised unexpectedly (a defect, not bad input): it is
#: set aside so the rest of its batch goes on. The reason names the exception type, never its text.
INTERNAL = "internal"
#: The code of a summary dead letter standing for letters not stored one by one (a sender over its rate).
SUPPRESSED = "suppressed"


def internal_letter(raw: bytes, source: str, received_at: datetime, exc: BaseException) -> DeadLetter:
    """The dead letter of a message whose processing raised ``exc``."""
    reason = (
        f"processing this message raised {type(exc).__name__} (a defect in Sentinel, not necessarily in the "
        "message); it was set aside so the rest of its batch goes on"
    )
    return DeadLetter(raw, source, received_at, reason, "", INTERNAL)


#: The code of a dead letter for an admitted message (or event) that PostgreSQL refused to store for a reason of
#: its data (a constraint, a value it cannot hold); the reason quotes what PostgreSQL said.
STORE_REFUSED = "store_refused"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an admitted item came from: what its dead letter needs should the database refuse it later.

    ``raw`` is the item's own bytes, ``path`` its path in its payload (``messages[3]``, or empty for a whole
    message) and ``index`` its index there (None for a whole message)."""

    raw: bytes
    source: str
    received_at: datetime
    path: str = ""
    index: int | None = None


#: Where an item of an admitted batch came from: ``origin("message", j)`` for row j of ``batch.messages``,
#: ``origin("event", i)`` for ``batch.events[i]``; None when that is not known.
OriginOf = Callable[[Literal["message", "event"], int], Origin | None]


def dead_letters(rejected: Iterable[Rejected], source: str, received_at: datetime) -> list[DeadLetter]:
    """One dead letter per refused item."""
    return [DeadLetter.from_rejected(r, source, received_at) for r in rejected]


def mqtt_source(topic: str) -> str:
    return f"mqtt:{topic}"


def device_source(device: str) -> str:
    """The source of a dead letter whose transport is no longer known: the device it concerns."""
    return f"device:{device}"


def http_source(client: str) -> str:
    """``client`` is who sent it: the gateway id of the bearer token, else the peer address."""
    return f"http:{client}"
