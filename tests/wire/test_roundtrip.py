"""Encoding then decoding gives back the same message; columns hold exactly the readings of the messages."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.wire import (
    Event,
    ReadingColumns,
    Status,
    Telemetry,
    contract,
    decode_batch,
    decode_event,
    decode_status,
    decode_telemetry,
    encode_batch,
    encode_event,
    encode_status,
    encode_telemetry,
    to_columns,
)
from tests.examples import examples
from tests.wire.strategies import good_ids, good_names, good_readings

NOW_US = 1_795_867_200_000_000


def _as_reading(value: float | bool) -> float | bool:
    """What the decoder keeps: bools as they are, every number as a float."""
    return value if isinstance(value, bool) else float(value)


ts_us = st.integers(contract.MIN_TS_MS * 1000, NOW_US)
seqs = st.integers(0, contract.INT64_MAX)
telemetry = st.builds(
    Telemetry,
    device=good_ids,
    ts_us=ts_us,
    seq=seqs,
    metrics=st.dictionaries(
        good_names, good_readings.map(lambda v: v if isinstance(v, bool) else float(v)), min_size=1, max_size=8
    ),
)
events = st.builds(
    Event,
    device=good_ids,
    ts_us=ts_us,
    seq=seqs,
    event=good_names,
    value=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    state=st.none() | good_names,
    note=st.none() | st.text(max_size=contract.NOTE_MAX_CHARS),
)
statuses = st.builds(Status, device=good_ids, status=st.sampled_from(["online", "offline"]), ts_us=st.none() | ts_us)


@settings(max_examples=examples(200), deadline=None)
@given(telemetry)
def test_telemetry_round_trips(msg: Telemetry) -> None:
    assert decode_telemetry(encode_telemetry(msg), now_us=NOW_US) == msg
    whole_ms = Telemetry(msg.device, msg.ts_us - msg.ts_us % 1000, msg.seq, msg.metrics)
    assert decode_telemetry(encode_telemetry(whole_ms, "ms"), now_us=NOW_US) == whole_ms


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(telemetry, max_size=10))
def test_batch_round_trips(messages: list[Telemetry]) -> None:
    result = decode_batch(encode_batch(messages), now_us=NOW_US)
    assert result.messages == messages
    assert result.rejected == []


@settings(max_examples=examples(100), deadline=None)
@given(events, statuses)
def test_event_and_status_round_trip(event: Event, status: Status) -> None:
    assert decode_event(encode_event(event), now_us=NOW_US) == event
    assert decode_status(encode_status(status), now_us=NOW_US) == status


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(telemetry, max_size=10))
def test_columns_hold_every_reading_once(messages: list[Telemetry]) -> None:
    columns = to_columns(messages)
    expected = [
        (m.device, m.seq, m.ts_us, metric, float(value)) for m in messages for metric, value in m.metrics.items()
    ]
    assert len(columns) == len(expected)
    got = list(
        zip(
            columns.device.tolist(),
            columns.seq.tolist(),
            columns.ts_us.tolist(),
            columns.metric.tolist(),
            columns.value.tolist(),
            strict=True,
        )
    )
    assert got == expected
    assert columns.seq.dtype == np.int64
    assert columns.ts_us.dtype == np.int64
    assert columns.value.dtype == np.float64


def test_bools_become_one_and_zero_in_columns() -> None:
    msg = Telemetry("d1", NOW_US, 7, {"valve_ready": True, "airlock_fault": False, "ch4_pct_lel": 2.5})
    assert to_columns([msg]).value.tolist() == [1.0, 0.0, 2.5]


def test_concat_keeps_order_and_empty_is_empty() -> None:
    first = to_columns([Telemetry("a", 1, 1, {"x": 1.0})])
    second = to_columns([Telemetry("b", 2, 2, {"y": 2.0, "z": 3.0})])
    joined = ReadingColumns.concat([first, ReadingColumns.empty(), second])
    assert joined.device.tolist() == ["a", "b", "b"]
    assert joined.metric.tolist() == ["x", "y", "z"]
    assert len(ReadingColumns.concat([])) == 0
    assert len(to_columns([])) == 0
