"""Topics of the contract, the device-versus-topic check, and one MQTT message end to end into dead letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sentinel.errors import WireError
from sentinel.wire import (
    DeadLetter,
    RejectCode,
    TopicInfo,
    check_sender,
    dead_letters,
    decode_mqtt,
    device_topic,
    gateway_topic,
    mqtt_source,
    parse_topic,
)
from sentinel.wire.topics import TopicInvalid

NOW_US = 1_795_867_200_000_000
RECEIVED = datetime(2026, 11, 28, 12, 0, 1, tzinfo=UTC)


def telemetry(device: str = "ch4-0007", **fields: object) -> bytes:
    body = {"device": device, "ts": "2026-11-28T20:00:00+08:00", "seq": 1, "metrics": {"ch4_pct_lel": 3.5}}
    return json.dumps(body | fields).encode()


@pytest.mark.parametrize(
    ("topic", "info"),
    [
        ("sentinel/v1/site-1/ch4-0007/telemetry", TopicInfo("site-1", "telemetry", device="ch4-0007")),
        ("sentinel/v1/site-1/dc.3/event", TopicInfo("site-1", "event", device="dc.3")),
        ("sentinel/v1/S1/x/status", TopicInfo("S1", "status", device="x")),
        ("sentinel/v1/site-1/_gateway/gw-01/telemetry", TopicInfo("site-1", "telemetry", gateway="gw-01")),
        ("sentinel/v1/site-1/_gateway/gw-01/status", TopicInfo("site-1", "status", gateway="gw-01")),
    ],
)
def test_topics_of_the_contract(topic: str, info: TopicInfo) -> None:
    assert parse_topic(topic) == info
    if info.gateway is None:
        assert device_topic(info.site, info.sender, info.topic_type) == topic
    else:
        assert gateway_topic(info.site, info.gateway, info.topic_type) == topic


@pytest.mark.parametrize(
    ("topic", "why", "reason"),
    [
        ("sentinel/v2/s/d/telemetry", "not under sentinel/v1/", "outside_root"),
        ("sentinel/v1/s/telemetry", "too few levels", "too_few_levels"),
        ("sentinel/v1/s/_gateway/g", "too few levels", "too_few_levels"),
        ("sentinel/v1/s/d/readings", "unknown topic type 'readings'", "unknown_kind"),
        ("sentinel/v1/s/d/x/telemetry", "6 levels", "extra_level"),
        ("sentinel/v1/s/_gateway/g/telemetry/x", "7 levels", "extra_level"),
        ("sentinel/v1/s/_gateway/g/event", "a gateway publishes telemetry and status only", "gateway_kind"),
        ("sentinel/v1/s/_gw/telemetry", "device '_gw' is not an id", "bad_id"),
        ("sentinel/v1//d/telemetry", "site '' is not an id", "bad_id"),
        ("sentinel/v1/s/a+b/status", "device 'a+b' is not an id", "bad_id"),
        ("sentinel/v1/s/_gateway/g h/telemetry", "gateway 'g h' is not an id", "bad_id"),
    ],
)
def test_topics_outside_the_contract(topic: str, why: str, reason: str) -> None:
    with pytest.raises(TopicInvalid) as caught:
        parse_topic(topic)
    assert caught.value.topic_reason == reason
    assert caught.value.problem.code == "topic_invalid"  # type: ignore[attr-defined]
    assert caught.value.problem.where == "topic"
    assert why in caught.value.problem.what
    assert repr(topic) in caught.value.problem.what


def test_check_sender() -> None:
    check_sender(parse_topic("sentinel/v1/s/d1/telemetry"), "d1")
    check_sender(parse_topic("sentinel/v1/s/_gateway/g/telemetry"), "any-device")  # a batch names many
    check_sender(parse_topic("sentinel/v1/s/_gateway/g/status"), "g")
    with pytest.raises(WireError) as caught:
        check_sender(parse_topic("sentinel/v1/s/_gateway/g/status"), "d1")
    assert caught.value.problem.what == "expected 'g' as the topic names it, got 'd1'"


def test_mqtt_device_topic_good_and_mismatched() -> None:
    good = decode_mqtt("sentinel/v1/s1/ch4-0007/telemetry", telemetry(), now_us=NOW_US)
    assert [m.device for m in good.telemetry] == ["ch4-0007"]
    assert good.rejected == []
    wrong = decode_mqtt("sentinel/v1/s1/ch4-0008/telemetry", telemetry(), now_us=NOW_US)
    assert wrong.telemetry == []
    [rejected] = wrong.rejected
    assert (rejected.problem.where, rejected.code, rejected.index) == ("device", RejectCode.DEVICE_MISMATCH, None)


def test_mqtt_gateway_batch_and_dead_letters() -> None:
    topic = "sentinel/v1/s1/_gateway/gw-01/telemetry"
    payload = json.dumps(
        {"messages": [json.loads(telemetry("d1")), json.loads(telemetry("d2", seq="2")), json.loads(telemetry("d3"))]}
    ).encode()
    result = decode_mqtt(topic, payload, now_us=NOW_US)
    assert [m.device for m in result.telemetry] == ["d1", "d3"]
    letters = dead_letters(result.rejected, mqtt_source(topic), RECEIVED)
    assert letters == [
        DeadLetter(
            raw=json.dumps(json.loads(telemetry("d2", seq="2"))).encode(),
            source=f"mqtt:{topic}",
            received_at=RECEIVED,
            reason="expected an integer sequence number, got string",
            path="messages[1].seq",
            code="wrong_type",
            index=1,
        )
    ]
    assert letters[0].message == "messages[1].seq: expected an integer sequence number, got string"


def test_mqtt_event_status_and_bad_topic() -> None:
    event = b'{"device": "dc-3", "ts": 1795867200000, "seq": 4, "event": "spark", "value": 2}'
    got = decode_mqtt("sentinel/v1/s1/dc-3/event", event, now_us=NOW_US)
    assert [(e.event, e.value, e.state) for e in got.events] == [("spark", 2.0, None)]
    will = decode_mqtt("sentinel/v1/s1/_gateway/gw-01/status", b'{"device":"gw-01","status":"offline"}')
    assert [(s.device, s.status, s.ts_us) for s in will.statuses] == [("gw-01", "offline", None)]
    lost = decode_mqtt("sentinel/v1/s1/dc-3/readings", event, now_us=NOW_US)
    assert lost.topic is None
    assert [(r.code, r.raw) for r in lost.rejected] == [(RejectCode.BAD_TOPIC, event)]
    broken = decode_mqtt("sentinel/v1/s1/dc-3/event", b"{", now_us=NOW_US)
    assert [r.code for r in broken.rejected] == [RejectCode.MALFORMED]


def test_dead_letter_wants_an_aware_time() -> None:
    rejected = decode_mqtt("x", b"{}").rejected
    with pytest.raises(ValueError, match="timezone-aware"):
        DeadLetter.from_rejected(rejected[0], "mqtt:x", datetime(2026, 1, 1))
