"""The rules of the wire contract that are not a field's type: id patterns, limits, time bounds, reject codes.

The JSON Schemas in ``schemas/`` repeat the patterns and the default limits below; ``tests/wire`` proves that the
schemas and the decoder agree, so change both together.

Patterns end in ``$(?!\\n)`` rather than ``$`` because Python's ``re`` (used by msgspec and by the ``jsonschema``
package) lets ``$`` match before a final newline, where ECMA-262 (the schema dialect) does not. They spell digits
``[0-9]`` because Python's ``\\d`` also matches non-ASCII digits.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from sentinel.errors import Problem

_END = r"$(?!\n)"

#: Device, gateway and site ids: MQTT-topic safe (no ``/``, ``+``, ``#``), never starting with ``_``, which is
#: reserved for topic words such as ``_gateway``.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}" + _END
#: Metric ids, event names and event states: lower snake case, as in the rule packs (``ch4_pct_lel``).
METRIC_PATTERN = r"^[a-z][a-z0-9_]{0,63}" + _END
#: RFC 3339 date-time WITH an offset, year 2000 or later, at most nanosecond digits. Calendar validity (no
#: 30 February) is checked after the pattern, by ``datetime.fromisoformat`` here and by ``format: date-time`` in
#: the schemas.
TIMESTAMP_PATTERN = (
    r"^[2-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])" + _END
)

INT64_MAX = 2**63 - 1
#: Readings older than this are a device whose clock was never set (epoch 0 and 2000-01-01 are the usual
#: reset values), not late data; accepting them would also ask the store for partitions decades in the past.
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant RFC 3339 can write
NOTE_MAX_CHARS = 500

# Defaults of WireLimits, repeated in the schemas as maxProperties / maxItems.
DEFAULT_MAX_METRICS = 256
DEFAULT_MAX_BATCH_MESSAGES = 10_000
DEFAULT_MAX_PAYLOAD_BYTES = 1_048_576
# A device clock a few minutes fast is drift; hours fast is almost always local time labelled as UTC (an
# Asia/Shanghai device writing "Z" is 8 h ahead), which would run rules in the future, so it is refused.
DEFAULT_MAX_FUTURE_S = 900.0


@dataclass(frozen=True, slots=True)
class WireLimits:
    """Limits the decoder enforces beyond the types. The schemas publish the defaults."""

    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_metrics: int = DEFAULT_MAX_METRICS
    max_batch_messages: int = DEFAULT_MAX_BATCH_MESSAGES
    max_future_s: float = DEFAULT_MAX_FUTURE_S

    def __post_init__(self) -> None:
        for name in ("max_payload_bytes", "max_metrics", "max_batch_messages"):
            if getattr(self, name) < 1:
                raise ValueError(f"WireLimits.{name} must be at least 1, got {getattr(self, name)}")
        if self.max_future_s < 0:
            raise ValueError(f"WireLimits.max_future_s must be >= 0, got {self.max_future_s}")


class RejectCode(StrEnum):
    """Why an input was refused, in a few words: low cardinality, fit for a Prometheus label."""

    OVERSIZED = "oversized"
    MALFORMED = "malformed_json"
    WRONG_TYPE = "wrong_type"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    BAD_ID = "bad_id"
    BAD_VALUE = "bad_value"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    TOO_MANY = "too_many"
    BAD_TOPIC = "topic_invalid"
    DEVICE_MISMATCH = "device_mismatch"


@dataclass(frozen=True)
class WireProblem(Problem):
    """A :class:`~sentinel.errors.Problem` with a :class:`RejectCode`, so counters can group rejections."""

    code: RejectCode = RejectCode.BAD_VALUE


def json_kind(value: object) -> str:
    """The JSON name of a decoded value's type, for "expected X, got Y" reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PATH_TOKEN = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]|\[("(?:[^"\\]|\\.)*")\]')


def join_path(prefix: str, name: str | int) -> str:
    """``messages[3]`` + ``metrics`` -> ``messages[3].metrics``; an int is an array index. A name that is not
    a plain identifier is written as a JSON string in brackets (``metrics["CH4 %LEL"]``) so paths stay unambiguous.
    """
    if isinstance(name, int):
        return f"{prefix}[{name}]"
    if not _PLAIN_NAME.match(name):
        return f"{prefix}[{json.dumps(name, ensure_ascii=False)}]"
    return f"{prefix}.{name}" if prefix else name


def prefix_path(prefix: str, path: str) -> str:
    """A path relative to an item, put under the item's own path: (``messages[3]``, ``ts``) -> ``messages[3].ts``."""
    if not prefix or not path:
        return prefix or path
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def split_path(path: str) -> list[str | int]:
    """The inverse of :func:`join_path`: ``messages[3].metrics["a b"]`` -> ``["messages", 3, "metrics", "a b"]``."""
    parts: list[str | int] = []
    position = 0
    while position < len(path):
        token = _PATH_TOKEN.match(path, position)
        if token is None:
            raise ValueError(f"not a wire path at character {position}: {path!r}")
        name, index, quoted = token.groups()
        parts.append(name if name is not None else int(index) if index is not None else json.loads(quoted))
        position = token.end()
    return parts
