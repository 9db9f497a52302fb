"""Issue 13 over a real Mosquitto, PostgreSQL and HTTP socket: hostile input never stops the stream.

Each test failed before its fix: poison payloads made the MQTT sink raise (the batch was redelivered forever) and
HTTP answer 500; malformed topics were never received; retained statuses were stored on every re-subscription;
a revoked key worked until the next registry refresh; dead letters kept every byte, without limit per sender.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from sentinel.collect.mqtt import CollectorConfig
from sentinel.registry.entries import RegistryFile
from sentinel.registry.keys import revoke_key
from sentinel.registry.repository import create_api_key
from sentinel.testing.broker import PrivateMosquitto, publish
from sentinel.testing.service import ServiceThread, running_service
from sentinel.wire import Telemetry, device_topic, encode_batch, encode_status, encode_telemetry, gateway_topic
from sentinel.wire.messages import Status

NOW_US = time.time_ns() // 1000
POISON = [
    b'[{"device":"ch4-a-10","ts":17646',
    b'{"device":"ch4-a-10","ts":1e400',
    b"[" * 10_000 + b"]" * 10_000,
    b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    b'{"device": "\xff"}',
]
JSON = {"content-type": "application/json"}


def _msg(device: str, seq: int, ts_us: int | None = None) -> Telemetry:
    return Telemetry(device, ts_us or NOW_US - 60_000_000 + seq * 1000, seq, {"pipe_pressure_mpa": 0.3})


def _config(broker: PrivateMosquitto, client_id: str = "sentinel-hostile") -> CollectorConfig:
    return CollectorConfig(host=broker.host, port=broker.port, client_id=client_id, batch_max_wait_s=0.05)


@pytest.fixture
def service(ingest_db: str, mosquitto: PrivateMosquitto, tmp_path: Path) -> Iterator[ServiceThread]:
    with running_service(ingest_db, tmp_path / "spool", mqtt=_config(mosquitto)) as svc:
        collector = svc.sentinel.collector
        assert collector is not None
        _wait(collector.connected.is_set, "the collector never connected")
        yield svc


def _wait(done: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _count(db: str, sql: str, *args: object) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute(sql, args).fetchone()
    assert row is not None
    return int(row[0])


def _readings_of(db: str, device: str) -> int:
    return _count(db, "SELECT count(*) FROM readings r JOIN devices d USING (device_id) WHERE d.device = %s", device)


def _metric(service: ServiceThread, name: str, **labels: str) -> float:
    value = service.sentinel.metrics.registry.get_sample_value(name, labels or None)
    return float(value or 0.0)


def test_poison_mqtt_messages_do_not_stop_the_stream(
    service: ServiceThread, mosquitto: PrivateMosquitto, registry: RegistryFile, ingest_db: str
) -> None:
    import asyncio

    site, device, gw = registry.sites[0].id, registry.devices[0].id, registry.gateways[0].id
    own = device_topic(site, device, "telemetry")
    batch_topic = gateway_topic(site, gw, "telemetry")
    # Poison on every kind of topic, each followed by a good message in the same batch.
    messages: list[tuple[str, bytes]] = []
    for i, poison in enumerate(POISON):
        messages += [(own, poison), (batch_topic, poison), (device_topic(site, device, "status"), poison)]
        messages.append((own, encode_telemetry(_msg(device, i))))
    asyncio.run(publish(mosquitto.host, mosquitto.port, messages))
    _wait(lambda: _readings_of(ingest_db, device) == len(POISON), "good messages beside poison were not stored")
    # ... and the next batch goes through too.
    asyncio.run(publish(mosquitto.host, mosquitto.port, [(own, encode_telemetry(_msg(device, 100)))]))
    _wait(lambda: _readings_of(ingest_db, device) == len(POISON) + 1, "the batch after the poison was not stored")
    collector = service.sentinel.collector
    assert collector is not None
    assert collector.stats.sink_failures == 0
    _wait(lambda: _count(ingest_db, "SELECT count(*) FROM dead_letters") == 3 * len(POISON), "dead letters")
    with psycopg.connect(ingest_db) as conn:
        reasons = [r for (r,) in conn.execute("SELECT DISTINCT reason FROM dead_letters ORDER BY 1")]
        codes = {c for (c,) in conn.execute("SELECT DISTINCT code FROM dead_letters")}
    assert codes == {"malformed_json"}
    assert reasons == [
        "malformed JSON at byte 320: nested more than 64 levels deep",
        "malformed JSON at byte 64: nested more than 64 levels deep",
        "malformed JSON: input ends early at byte 31",
        "malformed JSON: input ends early at byte 32",
        "malformed JSON: invalid UTF-8 at byte 12",
    ]


@pytest.mark.parametrize("body", POISON)
@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_poison_http_bodies_get_400_with_a_reason(
    service: ServiceThread, registry: RegistryFile, ingest_db: str, body: bytes, content_type: str
) -> None:
    secret = registry.gateways[0].secret
    with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {secret}"}) as http:
        response = http.post("/v1/telemetry", content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_telemetry"
    assert "malformed JSON" in response.json()["reason"]
    _wait(lambda: _count(ingest_db, "SELECT count(*) FROM dead_letters") == 1, "no dead letter")


TOPICS = {
    "extra_level": "sentinel/v1/{site}/{device}/x/telemetry",
    "unknown_kind": "sentinel/v1/{site}/{device}/readings",
    "too_few_levels": "sentinel/v1/{site}/telemetry",
    "gateway_kind": "sentinel/v1/{site}/_gateway/{gw}/event",
}


def test_malformed_topics_are_dead_lettered_and_counted_by_reason(
    service: ServiceThread, mosquitto: PrivateMosquitto, registry: RegistryFile, ingest_db: str
) -> None:
    import asyncio

    site, device, gw = registry.sites[0].id, registry.devices[0].id, registry.gateways[0].id
    payload = encode_telemetry(_msg(device, 1))
    topics = {reason: t.format(site=site, device=device, gw=gw) for reason, t in TOPICS.items()}
    asyncio.run(publish(mosquitto.host, mosquitto.port, [(t, payload) for t in topics.values()]))
    _wait(lambda: _count(ingest_db, "SELECT count(*) FROM dead_letters") == len(topics), "topic dead letters")
    with psycopg.connect(ingest_db) as conn:
        rows = conn.execute("SELECT source, code, path FROM dead_letters").fetchall()
    assert sorted(rows) == sorted((f"mqtt:{t}", "topic_invalid", "topic") for t in topics.values())
    for reason in topics:
        assert _metric(service, "sentinel_ingest_topic_invalid_total", reason=reason) == 1


def test_retained_status_is_stored_once_across_resubscriptions(
    ingest_db: str, mosquitto: PrivateMosquitto, registry: RegistryFile, tmp_path: Path
) -> None:
    import asyncio

    site, device = registry.sites[0].id, registry.devices[0].id
    status = encode_status(Status(device, "online", NOW_US - 5_000_000))
    topic = device_topic(site, device, "status")
    asyncio.run(publish(mosquitto.host, mosquitto.port, [(topic, status)], properties={"retain": True}))
    for run in range(3):  # a new session each time: the broker sends the retained status again on subscribe
        with running_service(ingest_db, tmp_path / "spool", mqtt=_config(mosquitto, f"sentinel-retained-{run}")) as svc:
            collector = svc.sentinel.collector
            assert collector is not None
            _wait(lambda c=collector: c.stats.acknowledged >= 1, "the retained status never arrived")  # type: ignore[misc]
    assert _count(ingest_db, "SELECT count(*) FROM device_events WHERE topic_type = 'status'") == 1


def test_revoked_key_stops_and_new_key_works_at_once(service: ServiceThread, ingest_db: str) -> None:
    with psycopg.connect(ingest_db) as conn:
        token = create_api_key(conn, "duty-desk", "officer")
    with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get("/v1/alerts").status_code == 200  # no wait: a new key works at once
        with psycopg.connect(ingest_db) as conn:  # another connection, as `sentinel keys revoke` in another process
            revoke_key(conn, "duty-desk")
        refused = http.get("/v1/alerts")
    assert refused.status_code == 401
    assert refused.json()["reason"] == "unknown or revoked API key"


def test_same_seq_with_another_time_is_stored_and_counted(
    service: ServiceThread, registry: RegistryFile, ingest_db: str
) -> None:
    device, secret = registry.devices[0].id, registry.gateways[0].secret
    first, reset = _msg(device, 7, NOW_US - 30_000_000), _msg(device, 7, NOW_US - 20_000_000)
    with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {secret}"}) as http:
        for body in (encode_telemetry(first), encode_telemetry(reset), encode_telemetry(reset)):
            assert http.post("/v1/telemetry", content=body, headers=JSON).status_code == 202
    assert _readings_of(ingest_db, device) == 2  # a counter reset is a new message; the exact repeat is not
    assert _metric(service, "sentinel_ingest_seq_conflicts_total") == 1
    assert _metric(service, "sentinel_ingest_duplicates_total") == 1


def test_dead_letters_keep_a_prefix_size_and_hash(
    service: ServiceThread, mosquitto: PrivateMosquitto, registry: RegistryFile, ingest_db: str
) -> None:
    import asyncio

    site, device = registry.sites[0].id, registry.devices[0].id
    payload = b'{"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'  # over the 1 MiB limit, under the broker's
    asyncio.run(publish(mosquitto.host, mosquitto.port, [(device_topic(site, device, "telemetry"), payload)]))
    _wait(lambda: _count(ingest_db, "SELECT count(*) FROM dead_letters") == 1, "no dead letter")
    with psycopg.connect(ingest_db) as conn:
        row = conn.execute("SELECT length(raw), size, sha256, code FROM dead_letters").fetchone()
    assert row == (4096, len(payload), hashlib.sha256(payload).digest(), "oversized")


def test_dead_letters_are_rate_limited_per_sender_and_summarised(
    ingest_db: str, mosquitto: PrivateMosquitto, registry: RegistryFile, tmp_path: Path
) -> None:
    import asyncio

    from sentinel.ingest.letters import LetterLimiter

    site, device = registry.sites[0].id, registry.devices[0].id
    topic = device_topic(site, device, "telemetry")
    with running_service(ingest_db, tmp_path / "spool", mqtt=_config(mosquitto)) as svc:
        svc.sentinel.sink.letters = LetterLimiter(burst=5, rate_per_s=2.0)
        collector = svc.sentinel.collector
        assert collector is not None
        _wait(collector.connected.is_set, "not connected")
        asyncio.run(publish(mosquitto.host, mosquitto.port, [(topic, b"{")] * 50))
        _wait(lambda: collector.stats.acknowledged >= 50, "not acknowledged")
        # The summary comes with a later batch once the sender's bucket has room again.
        seq = 0

        def summarised() -> bool:
            nonlocal seq
            seq += 1
            asyncio.run(publish(mosquitto.host, mosquitto.port, [(topic, encode_telemetry(_msg(device, seq)))]))
            return _count(ingest_db, "SELECT count(*) FROM dead_letters WHERE code = 'suppressed'") == 1

        _wait(summarised, "no summary dead letter")
        suppressed = _metric(svc, "sentinel_ingest_dead_letters_suppressed_total", reason="malformed_json")
    with psycopg.connect(ingest_db) as conn:
        single = _count(ingest_db, "SELECT count(*) FROM dead_letters WHERE code = 'malformed_json'")
        (summary,) = conn.execute("SELECT reason FROM dead_letters WHERE code = 'suppressed'").fetchone() or ("",)
    assert single < 50
    assert single + suppressed == 50  # every refused message is stored or counted
    assert summary.startswith(f"{int(suppressed)} dead letter(s) from this sender")


def test_a_gateway_batch_item_cut_in_a_number_is_refused_alone(
    service: ServiceThread, mosquitto: PrivateMosquitto, registry: RegistryFile, ingest_db: str
) -> None:
    import asyncio

    site, gw, device = registry.sites[0].id, registry.gateways[0].id, registry.devices[1].id
    good = encode_batch([_msg(device, 1), _msg(device, 2)])
    asyncio.run(
        publish(
            mosquitto.host,
            mosquitto.port,
            [(gateway_topic(site, gw, "telemetry"), good[:-20]), (gateway_topic(site, gw, "telemetry"), good)],
        )
    )
    _wait(lambda: _readings_of(ingest_db, device) == 2, "the good batch was not stored")


def test_counts_are_exact_when_a_batch_is_bisected(
    ingest_db: str, mosquitto: PrivateMosquitto, registry: RegistryFile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message whose processing raises makes the sink prepare the batch again in halves: the malformed topic and
    the seq conflict of the same batch are counted once each, not once per attempt."""
    import asyncio

    import sentinel.ingest.sink as sink_module
    import sentinel.wire

    site, device = registry.sites[0].id, registry.devices[0].id
    defect = b'{"defect": true}'  # valid bytes; the patched decoder raises on them, as a defect would
    decode = sentinel.wire.decode_mqtt

    def raising(topic: str, payload: bytes, **kwargs: object) -> object:
        if payload == defect:
            raise ZeroDivisionError("a defect")
        return decode(topic, payload, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sink_module, "decode_mqtt", raising)
    config = CollectorConfig(
        host=mosquitto.host, port=mosquitto.port, client_id="sentinel-bisect", batch_max_wait_s=1.0
    )
    with running_service(ingest_db, tmp_path / "spool", mqtt=config) as svc:
        collector = svc.sentinel.collector
        assert collector is not None
        _wait(collector.connected.is_set, "the collector never connected")
        topic = device_topic(site, device, "telemetry")
        stored = [(topic, encode_telemetry(_msg(device, 7, NOW_US - 30_000_000)))]
        asyncio.run(publish(mosquitto.host, mosquitto.port, stored))
        _wait(lambda: _readings_of(ingest_db, device) == 1, "the first message was not stored")
        batch = [
            (f"sentinel/v1/{site}/{device}/x/telemetry", b"{}"),  # extra level: topic_invalid
            (topic, encode_telemetry(_msg(device, 7, NOW_US - 20_000_000))),  # seq 7 again, another time: conflict
            *[(topic, encode_telemetry(_msg(device, seq))) for seq in range(10, 16)],
            (topic, defect),
        ]
        asyncio.run(publish(mosquitto.host, mosquitto.port, batch))
        _wait(lambda: _readings_of(ingest_db, device) == 8, "the good messages of the bisected batch were not stored")
        _wait(lambda: _metric(svc, "sentinel_ingest_internal_errors_total") == 1, "the defect was not isolated")
        assert _metric(svc, "sentinel_ingest_topic_invalid_total", reason="extra_level") == 1
        assert _metric(svc, "sentinel_ingest_seq_conflicts_total") == 1
        assert _count(ingest_db, "SELECT count(*) FROM dead_letters WHERE code = 'internal'") == 1
