"""Dead letters kept within bounds: a prefix of each, and a rate per sender.

A refused 10 MB payload is kept as its first ``keep_bytes`` plus its size and SHA-256
(:meth:`~sentinel.wire.deadletter.DeadLetter.capped`): enough to see what it was and to match it against a copy,
not enough for anyone to fill the database by sending garbage. Each sender (the dead letter's ``source``: an MQTT
topic, an HTTP key or peer) may have ``burst`` letters stored at once and ``rate_per_s`` more each second (a token
bucket). Beyond that, letters are counted (``sentinel_ingest_dead_letters_suppressed_total`` by reason) and, as soon
as the sender's bucket has room again and any batch passes, stood for by one summary dead letter (code
``suppressed``) saying how many, of which reasons, since when. Nothing vanishes without a count.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sentinel.settings import Settings
from sentinel.wire.deadletter import SUPPRESSED, DeadLetter

_MAX_SENDERS = 10_000  # buckets kept; full, owing-nothing ones are forgotten first


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    suppressed: Counter[str] = field(default_factory=Counter)
    since: datetime | None = None


class LetterLimiter:
    def __init__(
        self,
        *,
        keep_bytes: int = 4096,
        burst: int = 100,
        rate_per_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keep_bytes = keep_bytes
        self.burst = burst
        self.rate_per_s = rate_per_s
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._owing: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> LetterLimiter:
        return cls(
            keep_bytes=settings.dead_letter_keep_bytes,
            burst=settings.dead_letter_burst,
            rate_per_s=settings.dead_letter_rate_per_s,
        )

    @property
    def owing(self) -> bool:
        """Some sender has suppressed letters not yet summarised."""
        return bool(self._owing)

    def _bucket(self, source: str, now: float) -> _Bucket:
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= _MAX_SENDERS:
                self._forget(now)
            bucket = self._buckets[source] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate_per_s)
            bucket.at = now
        return bucket

    def _forget(self, now: float) -> None:
        for source, bucket in list(self._buckets.items()):
            if source not in self._owing and bucket.tokens + (now - bucket.at) * self.rate_per_s >= self.burst:
                del self._buckets[source]
        if len(self._buckets) >= _MAX_SENDERS:  # every one is busy: forget the oldest (its debt is summarised)
            oldest = min(self._buckets, key=lambda s: self._buckets[s].at)
            self._buckets.pop(oldest)
            self._owing.discard(oldest)

    def admit(self, letters: Sequence[DeadLetter], received_at: datetime) -> tuple[list[DeadLetter], Counter[str]]:
        """The letters to store (capped, plus any summaries now due) and the suppressed count by reason."""
        now = self._clock()
        out: list[DeadLetter] = []
        for source in list(self._owing):
            bucket = self._bucket(source, now)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                out.append(self._summary(source, bucket, received_at))
        suppressed: Counter[str] = Counter()
        for letter in letters:
            bucket = self._bucket(letter.source, now)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                out.append(letter.capped(self.keep_bytes))
                continue
            bucket.suppressed[letter.code] += 1
            bucket.since = bucket.since or letter.received_at
            self._owing.add(letter.source)
            suppressed[letter.code] += 1
        return out, suppressed

    def _summary(self, source: str, bucket: _Bucket, received_at: datetime) -> DeadLetter:
        count = sum(bucket.suppressed.values())
        reasons = ", ".join(f"{code} {n}" for code, n in bucket.suppressed.most_common())
        since = bucket.since.isoformat() if bucket.since is not None else "?"
        reason = (
            f"{count} dead letter(s) from this sender since {since} were not stored one by one: it exceeded "
            f"{self.burst} at once and {self.rate_per_s:g} per second ({reasons})"
        )
        bucket.suppressed = Counter()
        bucket.since = None
        self._owing.discard(source)
        return DeadLetter(b"", source, received_at, reason, "", SUPPRESSED)
