"""Raw bytes -> validated messages, or precise reasons why not.

Fast path: msgspec decodes and type-checks a whole payload in C, then one small Python step per *message* (never
per reading) converts ``ts`` to UTC epoch microseconds and applies the checks a type cannot say (calendar date,
not too far in the future, metric count). Only when msgspec refuses something does the slow path run: the
payload's items are decoded one by one so the good ones are kept, and :mod:`sentinel.wire.explain` names the bad
field of each bad one.

Whole-payload failures (oversized, malformed JSON, not the expected envelope) raise
:class:`~sentinel.errors.DecodeError` whose ``problem`` is a :class:`WireProblem`. Item failures inside a batch are
returned as :class:`Rejected`, each with its index, its own bytes and a path such as
``messages[3].metrics.ch4_pct_lel``. ``now_us`` is the receiver's clock (UTC epoch microseconds); pass it in
tests, or leave it None to read the system clock.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Generic, TypeVar

import msgspec
from msgspec import UNSET

from sentinel.errors import DecodeError
from sentinel.wire.contract import INT64_MAX, RejectCode, WireLimits, WireProblem, join_path, json_kind
from sentinel.wire.explain import explain_envelope, explain_event, explain_status, explain_telemetry
from sentinel.wire.messages import (
    BatchIn,
    BatchRawIn,
    Event,
    EventIn,
    Status,
    StatusIn,
    Telemetry,
    TelemetryIn,
)

M = TypeVar("M")
DEFAULT_LIMITS = WireLimits()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_ANY = msgspec.json.Decoder()
_ANY_EXACT = msgspec.json.Decoder(float_hook=Decimal)  # the slow path: 1e400 stays a number to report
_TELEMETRY = msgspec.json.Decoder(TelemetryIn)
_BATCH = msgspec.json.Decoder(BatchIn)
_BATCH_RAW = msgspec.json.Decoder(BatchRawIn)
_ARRAY = msgspec.json.Decoder(list[TelemetryIn])
_ARRAY_RAW = msgspec.json.Decoder(list[msgspec.Raw])
_EVENT = msgspec.json.Decoder(EventIn)
_STATUS = msgspec.json.Decoder(StatusIn)


class _EnvelopeProbe(msgspec.Struct):
    """Only asks whether a JSON object has a ``messages`` key (a batch) or not (one message)."""

    messages: msgspec.Raw = msgspec.Raw()  # empty when the key is absent


_PROBE = msgspec.json.Decoder(_EnvelopeProbe)


@dataclass(frozen=True, slots=True)
class Rejected:
    """One refused item (or a whole refused payload, index None) with its own bytes and the reason."""

    problem: WireProblem
    raw: bytes
    index: int | None = None

    @property
    def code(self) -> RejectCode:
        return self.problem.code

    @property
    def reason(self) -> str:
        return str(self.problem)


@dataclass(slots=True)
class Decoded(Generic[M]):
    """What a payload held: the good messages, in payload order, and the refused items."""

    messages: list[M] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Context:
    now_us: int
    max_future_us: int
    max_metrics: int


def _context(now_us: int | None, limits: WireLimits) -> _Context:
    now = time.time_ns() // 1000 if now_us is None else now_us
    return _Context(now, int(limits.max_future_s * 1_000_000), limits.max_metrics)


def _problem(exc: DecodeError) -> WireProblem:
    problem = exc.problem
    return problem if isinstance(problem, WireProblem) else WireProblem(problem.where, problem.what)


def _reject(where: str, what: str, code: RejectCode) -> DecodeError:
    return DecodeError(WireProblem(where, what, code))


def _check_size(raw: bytes, limits: WireLimits) -> None:
    if len(raw) > limits.max_payload_bytes:
        raise _reject("", f"oversized: {len(raw)} bytes, the limit is {limits.max_payload_bytes}", RejectCode.OVERSIZED)


def _malformed(exc: Exception, raw: bytes, where: str = "") -> DecodeError:
    if isinstance(exc, UnicodeDecodeError):  # its offset is within one string; find the byte in the payload
        try:
            raw.decode("utf-8")
            start = exc.start
        except UnicodeDecodeError as whole:
            start = whole.start
        return _reject(where, f"malformed JSON: invalid UTF-8 at byte {start}", RejectCode.MALFORMED)
    text = str(exc)
    position = re.search(r"\(byte (\d+)\)", text)
    if position:
        detail = re.sub(r"^JSON is malformed: |\s*\(byte \d+\)$", "", text)
        what = f"malformed JSON at byte {position.group(1)}: {detail}"
    elif "truncated" in text:
        what = f"malformed JSON: input ends early at byte {len(raw)}"
    else:
        what = f"malformed JSON: {text}"
    return _reject(where, what, RejectCode.MALFORMED)


def _explain(
    raw: bytes, where: str, exc: msgspec.ValidationError, explain: Callable[[str, object], WireProblem | None]
) -> DecodeError:
    try:
        problem = explain(where, _ANY_EXACT.decode(raw))
    except msgspec.ValidationError:
        problem = None
    if problem is None:  # the explainer missed a constraint: still refuse, with msgspec's own words
        problem = WireProblem(where, f"rejected by the decoder: {exc}", RejectCode.WRONG_TYPE)
    return DecodeError(problem)


def _decode_one(
    decoder: msgspec.json.Decoder[M],
    raw: bytes,
    where: str,
    explain: Callable[[str, object], WireProblem | None],
) -> M:
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise _explain(raw, where, exc, explain) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _malformed(exc, raw, where) from None


def _ts_us(value: int | float | str, where: str, ctx: _Context) -> int:
    """Wire time (pattern and range already checked by msgspec) -> UTC epoch microseconds."""
    if type(value) is int:
        ts_us = value * 1000
    elif type(value) is str:
        try:
            delta = datetime.fromisoformat(value) - _EPOCH
        except ValueError as exc:
            raise _reject(where, f"not a calendar date-time: {value!r} ({exc})", RejectCode.BAD_TIMESTAMP) from None
        ts_us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    else:
        assert isinstance(value, float)
        if not value.is_integer():
            raise _reject(where, f"expected integer epoch milliseconds, got {value!r}", RejectCode.BAD_TIMESTAMP)
        ts_us = int(value) * 1000
    if ts_us - ctx.now_us > ctx.max_future_us:
        ahead_s = (ts_us - ctx.now_us) / 1e6
        ahead = f"{ahead_s:.0f} s" if ahead_s < 3600 else f"{ahead_s / 3600:.1f} h"
        raise _reject(
            where,
            f"{ahead} ahead of the receiver's clock, at most {ctx.max_future_us / 1e6:.0f} s is accepted "
            "(device clock wrong, or local time sent as UTC?)",
            RejectCode.FUTURE_TIMESTAMP,
        )
    return ts_us


def _seq(value: int | float, where: str) -> int:
    if type(value) is int:
        return value
    assert isinstance(value, float)
    if not value.is_integer() or value > INT64_MAX:
        raise _reject(where, f"expected an integer from 0 to 2^63-1, got {value!r}", RejectCode.BAD_VALUE)
    return int(value)


def _telemetry(msg: TelemetryIn, where: str, ctx: _Context) -> Telemetry:
    if len(msg.metrics) > ctx.max_metrics:
        raise _reject(
            join_path(where, "metrics"),
            f"expected at most {ctx.max_metrics} metrics, got {len(msg.metrics)}",
            RejectCode.TOO_MANY,
        )
    ts_us = _ts_us(msg.ts, join_path(where, "ts"), ctx)
    return Telemetry(msg.device, ts_us, _seq(msg.seq, join_path(where, "seq")), msg.metrics)


def _items(
    decoded: list[TelemetryIn] | None,
    raw_items: Callable[[], list[msgspec.Raw]],
    prefix: str,
    ctx: _Context,
    limits: WireLimits,
) -> Decoded[Telemetry]:
    """Judge a list of items: ``decoded`` when msgspec took the whole list, else one by one from raw."""
    out: Decoded[Telemetry] = Decoded()
    if decoded is not None:
        _check_count(len(decoded), prefix, limits)
        originals: list[msgspec.Raw] = []  # only read again when an item fails, to keep its own bytes
        for index, item in enumerate(decoded):
            try:
                out.messages.append(_telemetry(item, join_path(prefix, index), ctx))
            except DecodeError as exc:
                originals = originals or raw_items()
                out.rejected.append(Rejected(_problem(exc), bytes(originals[index]), index))
        return out
    items = raw_items()
    _check_count(len(items), prefix, limits)
    for index, item_raw in enumerate(items):
        where = join_path(prefix, index)
        item_bytes = bytes(item_raw)
        try:
            msg = _decode_one(_TELEMETRY, item_bytes, where, explain_telemetry)
            out.messages.append(_telemetry(msg, where, ctx))
        except DecodeError as exc:
            out.rejected.append(Rejected(_problem(exc), item_bytes, index))
    return out


def _check_count(count: int, where: str, limits: WireLimits) -> None:
    if count > limits.max_batch_messages:
        raise _reject(where, f"expected at most {limits.max_batch_messages} messages, got {count}", RejectCode.TOO_MANY)


def decode_telemetry(raw: bytes, *, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS) -> Telemetry:
    """One telemetry message (a device topic, or a one-message HTTP body). Raises DecodeError."""
    _check_size(raw, limits)
    return _telemetry(_decode_one(_TELEMETRY, raw, "", explain_telemetry), "", _context(now_us, limits))


def decode_event(raw: bytes, *, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS) -> Event:
    """One event message. Raises DecodeError."""
    _check_size(raw, limits)
    msg = _decode_one(_EVENT, raw, "", explain_event)
    ctx = _context(now_us, limits)
    return Event(
        msg.device,
        _ts_us(msg.ts, "ts", ctx),
        _seq(msg.seq, "seq"),
        msg.event,
        None if msg.value is UNSET else float(msg.value),
        None if msg.state is UNSET else msg.state,
        None if msg.note is UNSET else msg.note,
    )


def decode_status(raw: bytes, *, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS) -> Status:
    """One status message. Raises DecodeError."""
    _check_size(raw, limits)
    msg = _decode_one(_STATUS, raw, "", explain_status)
    ts_us = None if msg.ts is UNSET else _ts_us(msg.ts, "ts", _context(now_us, limits))
    return Status(msg.device, msg.status, ts_us)


def decode_batch(raw: bytes, *, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS) -> Decoded[Telemetry]:
    """A gateway batch ``{"messages": [...]}``: good messages kept, bad items in ``rejected``.

    Raises DecodeError when the payload as a whole is unusable (oversized, malformed, not the envelope).
    """
    _check_size(raw, limits)
    ctx = _context(now_us, limits)
    try:
        batch: BatchIn | None = _BATCH.decode(raw)
    except msgspec.ValidationError:
        batch = None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _malformed(exc, raw) from None

    def raw_items() -> list[msgspec.Raw]:
        return _decode_one(_BATCH_RAW, raw, "", explain_envelope).messages

    return _items(None if batch is None else batch.messages, raw_items, "messages", ctx, limits)


def decode_array(raw: bytes, *, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS) -> Decoded[Telemetry]:
    """A JSON array of telemetry messages (an HTTP body); item paths are ``[3].seq``."""
    _check_size(raw, limits)
    ctx = _context(now_us, limits)
    try:
        items: list[TelemetryIn] | None = _ARRAY.decode(raw)
    except msgspec.ValidationError:
        items = None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _malformed(exc, raw) from None

    def raw_items() -> list[msgspec.Raw]:
        try:
            return _ARRAY_RAW.decode(raw)
        except msgspec.ValidationError:
            value = _ANY.decode(raw)
            what = f"expected an array of telemetry objects, got {json_kind(value)}"
            raise _reject("", what, RejectCode.WRONG_TYPE) from None

    return _items(items, raw_items, "", ctx, limits)


def decode_ndjson(raw: bytes, *, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS) -> Decoded[Telemetry]:
    """Newline-delimited telemetry (an HTTP body). Item index = 0-based line number; blank lines are skipped."""
    _check_size(raw, limits)
    ctx = _context(now_us, limits)
    out: Decoded[Telemetry] = Decoded()
    lines = raw.split(b"\n")
    _check_count(sum(1 for line in lines if line.strip()), "", limits)
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"[{index}]"
        try:
            msg = _decode_one(_TELEMETRY, line, where, explain_telemetry)
            out.messages.append(_telemetry(msg, where, ctx))
        except DecodeError as exc:
            out.rejected.append(Rejected(_problem(exc), line, index))
    return out


def decode_http_body(
    raw: bytes, *, ndjson: bool = False, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS
) -> Decoded[Telemetry]:
    """An HTTP telemetry body: NDJSON when ``ndjson`` (Content-Type application/x-ndjson), else JSON holding
    one message, an array of messages, or a gateway batch ``{"messages": [...]}``.

    Whole-body failures (and a single message that is bad) raise DecodeError; bad items of a multi-item body
    are in ``rejected``.
    """
    _check_size(raw, limits)
    if ndjson:
        return decode_ndjson(raw, now_us=now_us, limits=limits)
    start = raw.lstrip()[:1]
    if start == b"[":
        return decode_array(raw, now_us=now_us, limits=limits)
    if start == b"{":
        try:
            is_batch = len(_PROBE.decode(raw).messages) > 0
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _malformed(exc, raw) from None
        if is_batch:
            return decode_batch(raw, now_us=now_us, limits=limits)
        return Decoded([decode_telemetry(raw, now_us=now_us, limits=limits)])
    try:
        value = _ANY.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _malformed(exc, raw) from None
    raise _reject(
        "",
        f'expected a telemetry object, an array of them or {{"messages": [...]}}, got {json_kind(value)}',
        RejectCode.WRONG_TYPE,
    )
