"""Payloads that once escaped the decoder as exceptions (issue 13): every one is refused with a position."""

from __future__ import annotations

import pytest

from sentinel.errors import DecodeError
from sentinel.wire import RejectCode, decode_http_body, decode_mqtt
from sentinel.wire.locate import MAX_DEPTH, locate

NOW_US = 1_795_867_200_000_000

POISON = [
    (b'[{"device":"ch4-a-10","ts":17646', "malformed JSON: input ends early at byte 32"),
    (b'{"device":"ch4-a-10","ts":1e400', "malformed JSON: input ends early at byte 31"),
    (b'[{"device":"ch4-a-10","ts":1e400', "malformed JSON: input ends early at byte 32"),
    (b'{"messages":[{"device":"x","ts":17646', "malformed JSON: input ends early at byte 37"),
    (b"[" * 10_000 + b"]" * 10_000, f"malformed JSON at byte {MAX_DEPTH}: nested more than {MAX_DEPTH} levels deep"),
    (
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        f"malformed JSON at byte {5 * MAX_DEPTH}: nested more than {MAX_DEPTH} levels deep",
    ),
    (b'{"device": "\xff"}', "malformed JSON: invalid UTF-8 at byte 12"),
]
TOPICS = [
    "sentinel/v1/s1/_gateway/gw1/telemetry",
    "sentinel/v1/s1/d1/telemetry",
    "sentinel/v1/s1/d1/event",
    "sentinel/v1/s1/d1/status",
    "sentinel/v1/s1/_gateway/gw1/status",
]


@pytest.mark.parametrize("topic", TOPICS)
@pytest.mark.parametrize(("payload", "what"), POISON)
def test_poison_on_every_topic_is_a_rejection(topic: str, payload: bytes, what: str) -> None:
    decoded = decode_mqtt(topic, payload, now_us=NOW_US)
    assert [(r.problem.what, r.code) for r in decoded.rejected] == [(what, RejectCode.MALFORMED)]


@pytest.mark.parametrize(("payload", "what"), POISON)
@pytest.mark.parametrize("ndjson", [False, True])
def test_poison_http_body_is_a_decode_error(payload: bytes, what: str, ndjson: bool) -> None:
    if ndjson:  # one line of NDJSON: an item error, not a whole-body one
        decoded = decode_http_body(payload, ndjson=True, now_us=NOW_US)
        assert [r.problem.what for r in decoded.rejected] == [what]
        return
    with pytest.raises(DecodeError) as caught:
        decode_http_body(payload, now_us=NOW_US)
    assert caught.value.problem.what == what


@pytest.mark.parametrize(
    ("data", "at", "what"),
    [
        (b'{"a":1,}', 7, "trailing comma in object"),
        (b"[1,]", 3, "trailing comma in array"),
        (b'{"a" 1}', 5, "expected ':'"),
        (b'{"a":1 "b"}', 7, "expected ',' or '}'"),
        (b"[1 2]", 3, "expected ',' or ']'"),
        (b'"ab\x01"', 3, "invalid character"),
        (b'"\\q"', 2, "invalid escape character in string"),
        (b"01", 1, "invalid number"),
        (b"1 2", 2, "trailing characters"),
        (b"1.", 2, "input ends early"),
        (b"tru", 3, "input ends early"),
        (b"trux", 0, "invalid character"),
    ],
)
def test_locate_names_the_byte_in_our_words(data: bytes, at: int, what: str) -> None:
    fault = locate(data)
    assert fault is not None
    assert (fault.at, fault.what) == (at, what)


@pytest.mark.parametrize("data", [b'{"a": [1, -2.5e+3, true, null, "x\\u00e9\\n"], "b": {}}', b" [] ", b'"\xc3\xa9"'])
def test_locate_accepts_json(data: bytes) -> None:
    assert locate(data) is None
