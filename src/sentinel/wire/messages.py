"""Message types: the shapes on the wire (``*In``, decoded by msgspec in C) and the validated messages.

The ``*In`` Structs check types, required and unknown fields and ranges; ``sentinel.wire.checks`` adds the id,
name and timestamp patterns, the calendar and the limits. Together they are the JSON Schemas in ``schemas/``.

On the wire::

    telemetry  {"device": "ch4-0007", "ts": "2026-11-28T08:00:00.250+08:00", "seq": 41,
                "metrics": {"ch4_pct_lel": 3.5, "valve_ready": true}}
    batch      {"messages": [<telemetry>, ...]}            (gateway topic, or an HTTP body)
    event      {"device": "dc-0003", "ts": 1764288000250, "seq": 9, "event": "spark",
                "value": 2, "state": "detected", "note": "zone 2"}      (value, state, note optional)
    status     {"device": "ch4-0007", "status": "offline", "ts": "..."}  (ts optional: a last will is
                written at connect time, so its time would be wrong)

``ts`` is an RFC 3339 date-time with an offset, or integer epoch milliseconds. ``seq`` is a per-device counter
(integer >= 0); with ``device`` it identifies a message for deduplication.

After decoding, :class:`Telemetry`, :class:`Event` and :class:`Status` carry ``ts_us``: UTC epoch microseconds.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from sentinel.wire.contract import INT64_MAX, MAX_TS_MS, MIN_TS_MS, NOTE_MAX_CHARS

FLOAT_MAX = sys.float_info.max

# Ids, names and the timestamp pattern are checked after decoding (sentinel.wire.checks): a pattern here would
# run a regular expression per key of every message, ten times the cost of the whole decode.
# The bounds refuse inf (JSON 1e400 decodes to it); NaN fails every comparison, so it is refused too.
FiniteFloat = Annotated[float, Meta(ge=-FLOAT_MAX, le=FLOAT_MAX)]
# JSON Schema counts 41.0 as an integer, so the decoder takes integral floats for ts and seq and checks them.
TimestampIn = (
    Annotated[int, Meta(ge=MIN_TS_MS, le=MAX_TS_MS)] | Annotated[float, Meta(ge=MIN_TS_MS, le=MAX_TS_MS)] | str
)
SeqIn = Annotated[int, Meta(ge=0, le=INT64_MAX)] | Annotated[float, Meta(ge=0)]
NoteText = Annotated[str, Meta(max_length=NOTE_MAX_CHARS)]
StatusValue = Literal["online", "offline"]


class TelemetryIn(msgspec.Struct, forbid_unknown_fields=True):
    """One device's readings at one time, as sent."""

    device: str
    ts: TimestampIn
    seq: SeqIn
    metrics: Annotated[dict[str, FiniteFloat | bool], Meta(min_length=1)]


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    """A gateway's batch: telemetry for many devices."""

    messages: list[TelemetryIn]


class BatchRawIn(msgspec.Struct, forbid_unknown_fields=True):
    """The batch envelope with its items left undecoded, to decode and judge them one by one."""

    messages: list[msgspec.Raw]


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    """A discrete event (spark, valve state, interlock trip), as sent."""

    device: str
    ts: TimestampIn
    seq: SeqIn
    event: str
    value: FiniteFloat | bool | UnsetType = UNSET
    state: str | UnsetType = UNSET
    note: NoteText | UnsetType = UNSET


class StatusIn(msgspec.Struct, forbid_unknown_fields=True):
    """Online/offline, published retained; the device id is the gateway id on a gateway's status topic."""

    device: str
    status: StatusValue
    ts: TimestampIn | UnsetType = UNSET


class Telemetry(msgspec.Struct, frozen=True, gc=False):
    """A validated telemetry message. ``metrics`` values are floats or bools (bools count as 1.0 / 0.0)."""

    device: str
    ts_us: int
    seq: int
    metrics: dict[str, float | bool]


class Event(msgspec.Struct, frozen=True, gc=False):
    """A validated event. ``value`` is None when the event carried none."""

    device: str
    ts_us: int
    seq: int
    event: str
    value: float | None = None
    state: str | None = None
    note: str | None = None


class Status(msgspec.Struct, frozen=True, gc=False):
    """A validated online/offline status. ``ts_us`` is None when the sender gave no time."""

    device: str
    status: StatusValue
    ts_us: int | None = None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_ts(ts_us: int) -> str:
    """UTC epoch microseconds as RFC 3339 (``2026-11-28T00:00:00.250000Z``): exact, so it decodes back equal."""
    return (_EPOCH + timedelta(microseconds=ts_us)).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _wire_ts(ts_us: int, ts_format: Literal["rfc3339", "ms"]) -> int | str:
    if ts_format == "ms":
        if ts_us % 1000:
            raise ValueError(f"ts_us={ts_us} has sub-millisecond digits that epoch milliseconds cannot carry")
        return ts_us // 1000
    return format_ts(ts_us)


def encode_telemetry(msg: Telemetry, ts_format: Literal["rfc3339", "ms"] = "rfc3339") -> bytes:
    """The wire JSON of one message (simulators and tests publish this)."""
    return msgspec.json.encode(TelemetryIn(msg.device, _wire_ts(msg.ts_us, ts_format), msg.seq, msg.metrics))


def encode_batch(messages: list[Telemetry], ts_format: Literal["rfc3339", "ms"] = "rfc3339") -> bytes:
    """The wire JSON of a gateway batch."""
    items = [TelemetryIn(m.device, _wire_ts(m.ts_us, ts_format), m.seq, m.metrics) for m in messages]
    return msgspec.json.encode(BatchIn(items))


def encode_event(msg: Event, ts_format: Literal["rfc3339", "ms"] = "rfc3339") -> bytes:
    """The wire JSON of one event; absent optional fields are left out, not written as null."""
    return msgspec.json.encode(
        EventIn(
            msg.device,
            _wire_ts(msg.ts_us, ts_format),
            msg.seq,
            msg.event,
            UNSET if msg.value is None else msg.value,
            UNSET if msg.state is None else msg.state,
            UNSET if msg.note is None else msg.note,
        )
    )


def encode_status(msg: Status, ts_format: Literal["rfc3339", "ms"] = "rfc3339") -> bytes:
    """The wire JSON of a status (use it as the payload of a device's last will, with no ts)."""
    ts: int | str | UnsetType = UNSET if msg.ts_us is None else _wire_ts(msg.ts_us, ts_format)
    return msgspec.json.encode(StatusIn(msg.device, msg.status, ts))
