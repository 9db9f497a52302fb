"""The checks after msgspec's: ids and metric names, time to UTC microseconds, the future bound, seq, limits.

msgspec could check the id and name patterns itself, but it runs a regular expression for every key of every
message (measured: 4.6 µs for a message of 8 readings, against 0.43 µs without patterns). Devices and metric names
repeat endlessly, so a name is matched once and then remembered in a bounded set; a message's metric names are
checked with one ``set.issuperset`` call. When a check fails here, :class:`NeedsExplaining` sends the item to
:mod:`sentinel.wire.explain`, which says exactly what is wrong; so these functions only decide, quickly.

Paths in the errors raised here are relative to the message (``ts``, ``metrics``); batch decoders prefix them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime

from msgspec import UNSET

from sentinel.errors import DecodeError
from sentinel.wire.contract import (
    ID_PATTERN,
    INT64_MAX,
    METRIC_PATTERN,
    TIMESTAMP_PATTERN,
    RejectCode,
    WireLimits,
    WireProblem,
)
from sentinel.wire.messages import Event, EventIn, Status, StatusIn, Telemetry, TelemetryIn

_ID = re.compile(ID_PATTERN)
_NAME = re.compile(METRIC_PATTERN)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_offsets: dict[str, int] = {}  # "+08:00" -> 28_800_000_000; at most 2 x 24 x 60 entries
# Bounded so that a sender inventing ids cannot grow memory without end; past the bound, ids are matched each time.
KNOWN_MAX = 100_000
_known_ids: set[str] = set()
_known_names: set[str] = set()


class NeedsExplaining(Exception):
    """A fast check failed; the slow path (explain) finds the field and says what was expected."""


@dataclass(slots=True)  # not frozen: a frozen __init__ costs more than a whole decode step
class Context:
    """What the checks need besides the message: the receiver's clock and the limits."""

    now_us: int
    max_future_us: int
    max_metrics: int


def context(now_us: int | None, limits: WireLimits) -> Context:
    now = time.time_ns() // 1000 if now_us is None else now_us
    return Context(now, int(limits.max_future_s * 1_000_000), limits.max_metrics)


def reject(where: str, what: str, code: RejectCode) -> DecodeError:
    return DecodeError(WireProblem(where, what, code))


def _check_id(value: str) -> None:
    if value not in _known_ids:
        if _ID.search(value) is None:
            raise NeedsExplaining
        if len(_known_ids) < KNOWN_MAX:
            _known_ids.add(value)


def _check_name(value: str) -> None:
    if value not in _known_names:
        if _NAME.search(value) is None:
            raise NeedsExplaining
        if len(_known_names) < KNOWN_MAX:
            _known_names.add(value)


def _offset_us(text: str) -> int:
    """``+08:00`` -> microseconds east of UTC (the pattern has already checked its shape)."""
    offset = _offsets.get(text)
    if offset is None:
        offset = (int(text[1:3]) * 3600 + int(text[4:6]) * 60) * 1_000_000 * (-1 if text[0] == "-" else 1)
        _offsets[text] = offset
    return offset


def ts_us(value: int | float | str, ctx: Context, where: str = "ts") -> int:
    """Wire time (range already checked by msgspec) -> UTC epoch microseconds, refusing a time too far ahead."""
    if type(value) is int:
        result = value * 1000
    elif type(value) is str:
        if _TIMESTAMP.match(value) is None:
            raise NeedsExplaining
        # Parse the local time without its offset and subtract the offset ourselves: subtracting an aware
        # datetime in another zone from the UTC epoch costs more than the parse.
        if value[-1] == "Z":
            local, offset_us = value[:-1], 0
        else:
            local, offset_us = value[:-6], _offset_us(value[-6:])
        try:
            delta = datetime.fromisoformat(local) - _EPOCH_NAIVE
        except ValueError:  # the pattern bounds every field, so only the day can be past its month's end
            what = f"not a calendar date-time: {value!r} (day is out of range for month)"
            raise reject(where, what, RejectCode.BAD_TIMESTAMP) from None
        result = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds - offset_us
    else:
        assert isinstance(value, float)
        if not value.is_integer():
            raise reject(where, f"expected integer epoch milliseconds, got {value!r}", RejectCode.BAD_TIMESTAMP)
        result = int(value) * 1000
    if result - ctx.now_us > ctx.max_future_us:
        ahead_s = (result - ctx.now_us) / 1e6
        ahead = f"{ahead_s:.0f} s" if ahead_s < 3600 else f"{ahead_s / 3600:.1f} h"
        raise reject(
            where,
            f"{ahead} ahead of the receiver's clock, at most {ctx.max_future_us / 1e6:.0f} s is accepted "
            "(device clock wrong, or local time sent as UTC?)",
            RejectCode.FUTURE_TIMESTAMP,
        )
    return result


def seq(value: int | float, where: str = "seq") -> int:
    """JSON Schema counts 41.0 as an integer, so an integral float is taken; 41.5 is not."""
    if type(value) is int:
        return value
    assert isinstance(value, float)
    if not value.is_integer() or value > INT64_MAX:
        raise reject(where, f"expected an integer from 0 to 2^63-1, got {value!r}", RejectCode.BAD_VALUE)
    return int(value)


def telemetry(msg: TelemetryIn, ctx: Context) -> Telemetry:
    _check_id(msg.device)
    metrics = msg.metrics
    if not _known_names.issuperset(metrics):
        for name in metrics:
            _check_name(name)
    if len(metrics) > ctx.max_metrics:
        raise reject("metrics", f"expected at most {ctx.max_metrics} metrics, got {len(metrics)}", RejectCode.TOO_MANY)
    return Telemetry(msg.device, ts_us(msg.ts, ctx), seq(msg.seq), metrics)


def event(msg: EventIn, ctx: Context) -> Event:
    _check_id(msg.device)
    _check_name(msg.event)
    if msg.state is not UNSET:
        _check_name(msg.state)
    return Event(
        msg.device,
        ts_us(msg.ts, ctx),
        seq(msg.seq),
        msg.event,
        None if msg.value is UNSET else float(msg.value),
        None if msg.state is UNSET else msg.state,
        None if msg.note is UNSET else msg.note,
    )


def status(msg: StatusIn, ctx: Context) -> Status:
    _check_id(msg.device)
    return Status(msg.device, msg.status, None if msg.ts is UNSET else ts_us(msg.ts, ctx))
