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

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Generic, TypeVar

import msgspec

from sentinel.errors import DecodeError
from sentinel.wire import checks
from sentinel.wire.checks import NeedsExplaining, reject
from sentinel.wire.contract import RejectCode, WireLimits, WireProblem, join_path, json_kind, prefix_path
from sentinel.wire.explain import explain_envelope, explain_event, explain_status, explain_telemetry
from sentinel.wire.locate import locate
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
R = TypeVar("R")
DEFAULT_LIMITS = WireLimits()

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


Explain = Callable[[str, object], WireProblem | None]


def _problem(exc: DecodeError, prefix: str = "") -> WireProblem:
    problem = exc.problem
    code = problem.code if isinstance(problem, WireProblem) else RejectCode.BAD_VALUE
    return WireProblem(prefix_path(prefix, problem.where), problem.what, code)


def _check_size(raw: bytes, limits: WireLimits) -> None:
    if len(raw) > limits.max_payload_bytes:
        raise reject("", f"oversized: {len(raw)} bytes, the limit is {limits.max_payload_bytes}", RejectCode.OVERSIZED)


#: What msgspec raises for bytes that are not (decodable) JSON: its DecodeError (ValidationError, a subclass, is
#: caught before it), UnicodeDecodeError (msgspec < 0.23) and RecursionError (nesting deeper than it recurses).
_NOT_JSON = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def _malformed(raw: bytes, where: str = "") -> DecodeError:
    """Refuse ``raw`` as malformed, with the byte and the fault found by our own scan (never the dependency's
    words, which change between releases)."""
    fault = locate(raw)
    what = fault.describe() if fault is not None else "malformed JSON: the decoder refused it"
    return reject(where, what, RejectCode.MALFORMED)


def _any(decoder: msgspec.json.Decoder[object], raw: bytes, where: str = "") -> object:
    """Decode without a type; DecodeError (malformed) for bytes that are not JSON."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError:
        raise
    except _NOT_JSON:
        raise _malformed(raw, where) from None


def _explained(raw: bytes, where: str, explain: Explain, detail: object) -> DecodeError:
    """The slow path: decode without a type and let the explainer name the field."""
    try:
        problem = explain(where, _any(_ANY_EXACT, raw, where))
    except msgspec.ValidationError:
        problem = None
    except DecodeError as exc:  # malformed after all (msgspec checks types before it reaches the end)
        return exc
    if problem is None:  # the explainer missed a constraint: still refuse, in our words
        problem = WireProblem(where, f"does not match the {detail}", RejectCode.WRONG_TYPE)
    return DecodeError(problem)


def _decode_one(decoder: msgspec.json.Decoder[M], raw: bytes, where: str, explain: Explain) -> M:
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError:
        raise _explained(raw, where, explain, "contract") from None
    except _NOT_JSON:
        raise _malformed(raw, where) from None


def _finish(
    check: Callable[[M, checks.Context], R], msg: M, ctx: checks.Context, raw: bytes, *, where: str, explain: Explain
) -> R:
    """Run the checks after msgspec's on one message; errors carry paths under ``where``."""
    try:
        return check(msg, ctx)
    except NeedsExplaining:
        raise _explained(raw, where, explain, "contract (a pattern)") from None
    except DecodeError as exc:
        raise DecodeError(_problem(exc, where)) from None


def _check_count(count: int, where: str, limits: WireLimits) -> None:
    if count > limits.max_batch_messages:
        raise reject(where, f"expected at most {limits.max_batch_messages} messages, got {count}", RejectCode.TOO_MANY)


def _items(
    decoded: list[TelemetryIn] | None,
    raw_items: Callable[[], list[msgspec.Raw]],
    prefix: str,
    ctx: checks.Context,
    limits: WireLimits,
) -> Decoded[Telemetry]:
    """Judge a list of items: ``decoded`` when msgspec took the whole list, else one by one from raw."""
    out: Decoded[Telemetry] = Decoded()
    good = out.messages.append
    if decoded is not None:
        _check_count(len(decoded), prefix, limits)
        originals: list[msgspec.Raw] = []  # only read when an item fails, to keep its own bytes
        for index, item in enumerate(decoded):
            try:
                good(checks.telemetry(item, ctx))
            except (NeedsExplaining, DecodeError):
                originals = originals or raw_items()
                item_raw = bytes(originals[index])
                where = join_path(prefix, index)
                try:
                    _finish(checks.telemetry, item, ctx, item_raw, where=where, explain=explain_telemetry)
                except DecodeError as exc:
                    out.rejected.append(Rejected(_problem(exc), item_raw, index))
        return out
    items = raw_items()
    _check_count(len(items), prefix, limits)
    for index, item_raw in enumerate(items):
        item_bytes = bytes(item_raw)
        try:
            where = join_path(prefix, index)
            msg = _decode_one(_TELEMETRY, item_bytes, where, explain_telemetry)
            good(_finish(checks.telemetry, msg, ctx, item_bytes, where=where, explain=explain_telemetry))
        except DecodeError as exc:
            out.rejected.append(Rejected(_problem(exc), item_bytes, index))
    return out


def decode_telemetry(raw: bytes, *, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS) -> Telemetry:
    """One telemetry message (a device topic, or a one-message HTTP body). Raises DecodeError."""
    _check_size(raw, limits)
    msg = _decode_one(_TELEMETRY, raw, "", explain_telemetry)
    return _finish(checks.telemetry, msg, checks.context(now_us, limits), raw, where="", explain=explain_telemetry)


def decode_event(raw: bytes, *, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS) -> Event:
    """One event message. Raises DecodeError."""
    _check_size(raw, limits)
    msg = _decode_one(_EVENT, raw, "", explain_event)
    return _finish(checks.event, msg, checks.context(now_us, limits), raw, where="", explain=explain_event)


def decode_status(raw: bytes, *, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS) -> Status:
    """One status message. Raises DecodeError."""
    _check_size(raw, limits)
    msg = _decode_one(_STATUS, raw, "", explain_status)
    return _finish(checks.status, msg, checks.context(now_us, limits), raw, where="", explain=explain_status)


def decode_batch(raw: bytes, *, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS) -> Decoded[Telemetry]:
    """A gateway batch ``{"messages": [...]}``: good messages kept, bad items in ``rejected``.

    Raises DecodeError when the payload as a whole is unusable (oversized, malformed, not the envelope).
    """
    _check_size(raw, limits)
    ctx = checks.context(now_us, limits)
    try:
        batch: BatchIn | None = _BATCH.decode(raw)
    except msgspec.ValidationError:
        batch = None
    except _NOT_JSON:
        raise _malformed(raw) from None

    def raw_items() -> list[msgspec.Raw]:
        return _decode_one(_BATCH_RAW, raw, "", explain_envelope).messages

    return _items(None if batch is None else batch.messages, raw_items, "messages", ctx, limits)


def decode_array(raw: bytes, *, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS) -> Decoded[Telemetry]:
    """A JSON array of telemetry messages (an HTTP body); item paths are ``[3].seq``."""
    _check_size(raw, limits)
    ctx = checks.context(now_us, limits)
    try:
        items: list[TelemetryIn] | None = _ARRAY.decode(raw)
    except msgspec.ValidationError:
        items = None
    except _NOT_JSON:
        raise _malformed(raw) from None

    def raw_items() -> list[msgspec.Raw]:
        try:
            return _ARRAY_RAW.decode(raw)
        except msgspec.ValidationError:
            pass
        except _NOT_JSON:
            raise _malformed(raw) from None
        what = f"expected an array of telemetry objects, got {json_kind(_any(_ANY, raw))}"
        raise reject("", what, RejectCode.WRONG_TYPE)

    return _items(items, raw_items, "", ctx, limits)


def decode_ndjson(raw: bytes, *, now_us: int | None = None, limits: WireLimits = DEFAULT_LIMITS) -> Decoded[Telemetry]:
    """Newline-delimited telemetry (an HTTP body). Item index = 0-based line number; blank lines are skipped."""
    _check_size(raw, limits)
    ctx = checks.context(now_us, limits)
    out: Decoded[Telemetry] = Decoded()
    lines = raw.split(b"\n")
    _check_count(sum(1 for line in lines if line.strip()), "", limits)
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"[{index}]"
        try:
            msg = _decode_one(_TELEMETRY, line, where, explain_telemetry)
            out.messages.append(_finish(checks.telemetry, msg, ctx, line, where=where, explain=explain_telemetry))
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
        except msgspec.ValidationError:
            is_batch = False
        except _NOT_JSON:
            raise _malformed(raw) from None
        if is_batch:
            return decode_batch(raw, now_us=now_us, limits=limits)
        return Decoded([decode_telemetry(raw, now_us=now_us, limits=limits)])
    value = _any(_ANY, raw)
    raise reject(
        "",
        f'expected a telemetry object, an array of them or {{"messages": [...]}}, got {json_kind(value)}',
        RejectCode.WRONG_TYPE,
    )
