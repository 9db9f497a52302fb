"""Why msgspec refused a message: the slow path that names the exact field and what was expected.

msgspec decides good or bad in C, but its messages lose dict keys (``$.metrics[...]``) and speak Python
(``Expected `bool | float`, got `str```). Bad input is rare, so when msgspec refuses an item we decode it again
without a type and walk it here, in the order a reader would check it, to say
``messages[3].metrics.ch4_pct_lel: expected a number or a boolean, got string``.

The slow path decodes floats as ``Decimal`` so that an out-of-range number (``1e400``) can still be shown
and named instead of failing the whole decode. Every check here mirrors a constraint of the ``*In`` Structs
(types, patterns, required and unknown fields, ranges); the checks that msgspec cannot express (calendar dates,
future time, limits) live in ``decode``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from sentinel.wire.contract import (
    ID_PATTERN,
    INT64_MAX,
    MAX_TS_MS,
    METRIC_PATTERN,
    MIN_TS_MS,
    NOTE_MAX_CHARS,
    TIMESTAMP_PATTERN,
    RejectCode,
    WireProblem,
    join_path,
    json_kind,
)

FLOAT_MAX = 1.7976931348623157e308
_ID = re.compile(ID_PATTERN)
_METRIC = re.compile(METRIC_PATTERN)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)

ID_RULE = "1-64 of A-Z a-z 0-9 . _ -, not starting with . _ -"
METRIC_RULE = "1-64 of a-z 0-9 _, starting with a letter"

# One field check: (path, value) -> a problem, or None when the value is fine.
FieldCheck = Callable[[str, object], WireProblem | None]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _show(value: object) -> str:
    """A value as the sender wrote it: numbers in JSON spelling, strings quoted."""
    text = str(value) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _wrong(where: str, expected: str, value: object) -> WireProblem:
    return WireProblem(where, f"expected {expected}, got {json_kind(value)}", RejectCode.WRONG_TYPE)


def check_id(where: str, value: object) -> WireProblem | None:
    if not isinstance(value, str):
        return _wrong(where, "a string id", value)
    if not _ID.search(value):
        return WireProblem(where, f"expected an id of {ID_RULE}, got {value!r}", RejectCode.BAD_ID)
    return None


def check_name(where: str, value: object) -> WireProblem | None:
    if not isinstance(value, str):
        return _wrong(where, "a string name", value)
    if not _METRIC.search(value):
        return WireProblem(where, f"expected a name of {METRIC_RULE}, got {value!r}", RejectCode.BAD_ID)
    return None


def check_ts(where: str, value: object) -> WireProblem | None:
    if isinstance(value, str):
        if _TIMESTAMP.search(value):
            return None
        if re.search(r"T[0-9:.]+$", value):
            what = f"expected an RFC 3339 date-time WITH an offset (Z or +08:00), got {value!r} without one"
        else:
            what = (
                "expected an RFC 3339 date-time like 2026-11-28T08:00:00.250+08:00 (year 2000 or later, "
                f"T separator, offset with a colon), got {value!r}"
            )
        return WireProblem(where, what, RejectCode.BAD_TIMESTAMP)
    if _is_number(value):
        assert isinstance(value, int | float | Decimal)
        if not MIN_TS_MS <= value <= MAX_TS_MS:
            return WireProblem(
                where,
                f"expected epoch milliseconds from {MIN_TS_MS} (2000-01-01) to {MAX_TS_MS}, got {_show(value)}",
                RejectCode.BAD_TIMESTAMP,
            )
        return None
    return _wrong(where, "an RFC 3339 date-time string or integer epoch milliseconds", value)


def check_seq(where: str, value: object) -> WireProblem | None:
    if not _is_number(value):
        return _wrong(where, "an integer sequence number", value)
    assert isinstance(value, int | float | Decimal)
    if not 0 <= value <= INT64_MAX:
        return WireProblem(where, f"expected an integer from 0 to 2^63-1, got {_show(value)}", RejectCode.BAD_VALUE)
    return None


def check_reading(where: str, value: object) -> WireProblem | None:
    if isinstance(value, bool):
        return None
    if not _is_number(value):
        return _wrong(where, "a number or a boolean", value)
    assert isinstance(value, int | float | Decimal)
    # Decimal -> float rounds as msgspec's parser does; comparing keeps big ints exact. NaN fails too.
    magnitude = abs(float(value) if isinstance(value, Decimal) else value)
    if not magnitude <= FLOAT_MAX:
        return WireProblem(where, f"expected a finite number, got {_show(value)}", RejectCode.BAD_VALUE)
    return None


def check_metrics(where: str, value: object) -> WireProblem | None:
    if not isinstance(value, dict):
        return _wrong(where, "an object of metric id -> number or boolean", value)
    if not value:
        return WireProblem(where, "expected at least one metric, got an empty object", RejectCode.BAD_VALUE)
    for key, reading in value.items():
        problem = check_name(join_path(where, key), key) or check_reading(join_path(where, key), reading)
        if problem is not None:
            return problem
    return None


def check_note(where: str, value: object) -> WireProblem | None:
    if not isinstance(value, str):
        return _wrong(where, "a string", value)
    if len(value) > NOTE_MAX_CHARS:
        return WireProblem(
            where, f"expected at most {NOTE_MAX_CHARS} characters, got {len(value)}", RejectCode.BAD_VALUE
        )
    return None


def check_status(where: str, value: object) -> WireProblem | None:
    if value in ("online", "offline") and isinstance(value, str):
        return None
    return WireProblem(where, f'expected "online" or "offline", got {value!r}', RejectCode.BAD_VALUE)


def explain_object(
    where: str,
    obj: object,
    required: dict[str, FieldCheck],
    optional: dict[str, FieldCheck],
    what: str,
) -> WireProblem | None:
    """The first problem of a JSON object with the given fields, or None when it has none."""
    if not isinstance(obj, dict):
        return _wrong(where, what, obj)
    allowed = {**required, **optional}
    for key in obj:
        if key not in allowed:
            return WireProblem(
                join_path(where, key),
                f"unexpected field; allowed: {', '.join(allowed)}",
                RejectCode.UNKNOWN_FIELD,
            )
    for key in required:
        if key not in obj:
            return WireProblem(join_path(where, key), "required field is missing", RejectCode.MISSING_FIELD)
    for key, check in allowed.items():
        if key in obj:
            problem = check(join_path(where, key), obj[key])
            if problem is not None:
                return problem
    return None


TELEMETRY_FIELDS: dict[str, FieldCheck] = {
    "device": check_id,
    "ts": check_ts,
    "seq": check_seq,
    "metrics": check_metrics,
}
EVENT_FIELDS: dict[str, FieldCheck] = {"device": check_id, "ts": check_ts, "seq": check_seq, "event": check_name}
EVENT_OPTIONAL: dict[str, FieldCheck] = {"value": check_reading, "state": check_name, "note": check_note}
STATUS_FIELDS: dict[str, FieldCheck] = {"device": check_id, "status": check_status}
STATUS_OPTIONAL: dict[str, FieldCheck] = {"ts": check_ts}


def explain_telemetry(where: str, obj: object) -> WireProblem | None:
    return explain_object(where, obj, TELEMETRY_FIELDS, {}, "a telemetry object")


def explain_event(where: str, obj: object) -> WireProblem | None:
    return explain_object(where, obj, EVENT_FIELDS, EVENT_OPTIONAL, "an event object")


def explain_status(where: str, obj: object) -> WireProblem | None:
    return explain_object(where, obj, STATUS_FIELDS, STATUS_OPTIONAL, "a status object")


def _check_items(where: str, value: object) -> WireProblem | None:
    # The items are judged one by one later; here only the envelope.
    return None if isinstance(value, list) else _wrong(where, "an array of telemetry objects", value)


def explain_envelope(where: str, obj: object) -> WireProblem | None:
    return explain_object(where, obj, {"messages": _check_items}, {}, 'an object {"messages": [...]}')
