"""Decoder rules that a JSON Schema cannot state, and the shapes of HTTP bodies."""

from __future__ import annotations

import json

import pytest

from sentinel.errors import DecodeError
from sentinel.wire import (
    RejectCode,
    WireLimits,
    checks,
    decode_array,
    decode_batch,
    decode_http_body,
    decode_ndjson,
    decode_telemetry,
)

NOW_US = 1_795_867_200_000_000  # 2026-11-28T12:00:00Z, a fake clock


def telemetry(**fields: object) -> dict[str, object]:
    return {"device": "ch4-0007", "ts": "2026-11-28T12:00:00Z", "seq": 1, "metrics": {"ch4_pct_lel": 3.5}} | fields


def raw(value: object) -> bytes:
    return json.dumps(value).encode()


def refused(data: bytes, limits: WireLimits | None = None) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decode_telemetry(data, now_us=NOW_US, limits=limits or WireLimits())
    return caught.value


@pytest.mark.parametrize(
    ("ts", "expected_us"),
    [
        ("2026-11-28T20:00:00+08:00", NOW_US),
        ("2026-11-28T12:00:00Z", NOW_US),
        ("2026-11-28T06:30:00-05:30", NOW_US),
        ("2026-11-28T12:00:00.123456789Z", NOW_US + 123_456),  # nanoseconds are cut to microseconds
        ("2026-11-28T12:00:00.5+00:00", NOW_US + 500_000),
        (1_795_867_200_250, NOW_US + 250_000),
        (1_795_867_200_000.0, NOW_US),
    ],
)
def test_ts_becomes_utc_epoch_microseconds(ts: object, expected_us: int) -> None:
    assert decode_telemetry(raw(telemetry(ts=ts)), now_us=NOW_US).ts_us == expected_us


def test_future_limit_is_measured_against_the_injected_clock() -> None:
    limits = WireLimits(max_future_s=60)
    at_limit = raw(telemetry(ts=(NOW_US + 60_000_000) // 1000))
    assert decode_telemetry(at_limit, now_us=NOW_US, limits=limits).ts_us == NOW_US + 60_000_000
    past_limit = raw(telemetry(ts=(NOW_US + 60_001_000) // 1000))
    error = refused(past_limit, limits)
    assert (error.problem.where, error.problem.code) == ("ts", RejectCode.FUTURE_TIMESTAMP)  # type: ignore[attr-defined]
    # The same payload is fine an hour later: the rule follows the clock it is given.
    assert decode_telemetry(past_limit, now_us=NOW_US + 3_600_000_000, limits=limits).seq == 1


def test_local_time_labelled_utc_is_refused_with_a_hint() -> None:
    error = refused(raw(telemetry(ts="2026-11-28T20:00:00Z")))  # Shanghai wall time written as UTC: 8 h ahead
    assert "8.0 h ahead" in error.problem.what
    assert "local time sent as UTC" in error.problem.what


def test_oversized_payload_names_size_and_limit() -> None:
    data = raw(telemetry(metrics={f"m{i}": i for i in range(50)}))
    error = refused(data, WireLimits(max_payload_bytes=100))
    assert error.problem.where == ""
    assert error.problem.what == f"oversized: {len(data)} bytes, the limit is 100"
    assert error.problem.code == RejectCode.OVERSIZED  # type: ignore[attr-defined]


def test_metric_count_limit() -> None:
    limits = WireLimits(max_metrics=3)
    assert (
        len(decode_telemetry(raw(telemetry(metrics={"a": 1, "b": 2, "c": 3})), now_us=NOW_US, limits=limits).metrics)
        == 3
    )
    error = refused(raw(telemetry(metrics={"a": 1, "b": 2, "c": 3, "d": 4})), limits)
    assert (error.problem.where, error.problem.what) == ("metrics", "expected at most 3 metrics, got 4")


def test_batch_message_limit_refuses_the_whole_batch() -> None:
    batch = raw({"messages": [telemetry(seq=i) for i in range(4)]})
    with pytest.raises(DecodeError) as caught:
        decode_batch(batch, now_us=NOW_US, limits=WireLimits(max_batch_messages=3))
    assert caught.value.problem.where == "messages"
    assert caught.value.problem.what == "expected at most 3 messages, got 4"


def test_bools_stay_bools_in_messages() -> None:
    msg = decode_telemetry(raw(telemetry(metrics={"valve_ready": True, "airlock_fault": False})), now_us=NOW_US)
    assert msg.metrics == {"valve_ready": True, "airlock_fault": False}


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b'{"device": "a", "seq": 1,, }', "malformed JSON at byte 25: object keys must be strings"),
        (b'{"device": "a"', "malformed JSON: input ends early at byte 14"),
        (b'{"device": "\xff"}', "malformed JSON: invalid UTF-8 at byte 12"),
        (b'{"device": NaN}', "malformed JSON at byte 11: invalid character"),
        (b"", "malformed JSON: input ends early at byte 0"),
    ],
)
def test_malformed_json_gives_the_byte(data: bytes, what: str) -> None:
    error = refused(data)
    assert (error.problem.where, error.problem.what) == ("", what)
    assert error.problem.code == RejectCode.MALFORMED  # type: ignore[attr-defined]


def test_keys_that_are_not_identifiers_are_quoted_in_paths() -> None:
    error = refused(raw(telemetry(metrics={"CH4 %LEL": 3})))
    assert error.problem.where == 'metrics["CH4 %LEL"]'


def test_http_body_shapes() -> None:
    one, two = telemetry(seq=1), telemetry(seq=2)
    bad = telemetry(seq=-3)
    assert [m.seq for m in decode_http_body(raw(one), now_us=NOW_US).messages] == [1]
    assert [m.seq for m in decode_http_body(b"  " + raw([one, two]), now_us=NOW_US).messages] == [1, 2]
    envelope = decode_http_body(raw({"messages": [one, bad, two]}), now_us=NOW_US)
    assert [m.seq for m in envelope.messages] == [1, 2]
    assert [(r.index, r.reason) for r in envelope.rejected] == [
        (1, "messages[1].seq: expected an integer from 0 to 2^63-1, got -3")
    ]
    lines = raw(one) + b"\r\n\n" + raw(bad) + b"\n" + raw(two) + b"\n"
    ndjson = decode_http_body(lines, ndjson=True, now_us=NOW_US)
    assert [m.seq for m in ndjson.messages] == [1, 2]
    assert [(r.index, r.problem.where, r.raw) for r in ndjson.rejected] == [(2, "[2].seq", raw(bad))]
    with pytest.raises(DecodeError) as caught:
        decode_http_body(raw(bad), now_us=NOW_US)  # a single bad message is the whole body
    assert caught.value.problem.where == "seq"
    with pytest.raises(DecodeError) as caught:
        decode_http_body(b"42", now_us=NOW_US)
    assert caught.value.problem.what.startswith("expected a telemetry object, an array of them")


def test_ndjson_line_that_is_malformed_spoils_only_itself() -> None:
    lines = raw(telemetry(seq=1)) + b"\n{oops\n" + raw(telemetry(seq=2))
    result = decode_ndjson(lines, now_us=NOW_US)
    assert [m.seq for m in result.messages] == [1, 2]
    [rejected] = result.rejected
    assert (rejected.index, rejected.code, rejected.raw) == (1, RejectCode.MALFORMED, b"{oops")
    assert rejected.problem.where == "[1]"


def test_array_that_is_not_an_array_of_objects() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_array(raw({"a": 1}), now_us=NOW_US)
    assert caught.value.problem.what == "expected an array of telemetry objects, got object"
    result = decode_array(raw([1, telemetry()]), now_us=NOW_US)
    assert [(r.index, r.reason) for r in result.rejected] == [(0, "[0]: expected a telemetry object, got number")]
    assert len(result.messages) == 1


def test_future_item_in_a_batch_that_msgspec_accepts_keeps_its_own_bytes() -> None:
    items = [telemetry(seq=1), telemetry(seq=2, ts="2030-01-01T00:00:00Z"), telemetry(seq=3)]
    result = decode_batch(raw({"messages": items}), now_us=NOW_US)
    assert [m.seq for m in result.messages] == [1, 3]
    [rejected] = result.rejected
    assert (rejected.index, rejected.code) == (1, RejectCode.FUTURE_TIMESTAMP)
    assert json.loads(rejected.raw) == items[1]


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="max_metrics"):
        WireLimits(max_metrics=0)
    with pytest.raises(ValueError, match="max_future_s"):
        WireLimits(max_future_s=-1)


def test_remembered_names_are_bounded_and_still_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "KNOWN_MAX", len(checks._known_ids))  # the set is full from here on
    fresh = raw(telemetry(device="never-seen-before-1"))
    assert decode_telemetry(fresh, now_us=NOW_US).device == "never-seen-before-1"
    assert "never-seen-before-1" not in checks._known_ids
    assert refused(raw(telemetry(device="never seen"))).problem.where == "device"
    # A known-good name does not excuse a bad one beside it.
    error = refused(raw(telemetry(metrics={"ch4_pct_lel": 1.0, "Bad": 2.0})))
    assert error.problem.where == "metrics.Bad"
