"""HTTP ingest over a real socket: status codes, per-item errors, dead letters, roles and backpressure."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from sentinel.registry.entries import RegistryFile
from sentinel.registry.repository import create_api_key
from sentinel.testing.service import ServiceThread, running_service
from sentinel.wire import Telemetry, encode_telemetry

NOW_US = time.time_ns() // 1000


def _body(device: str, seq: int, value: float = 0.3) -> bytes:
    return encode_telemetry(Telemetry(device, NOW_US - 10_000_000 + seq, seq, {"pipe_pressure_mpa": value}))


@pytest.fixture
def service(ingest_db: str, tmp_path: Path) -> Iterator[ServiceThread]:
    with running_service(ingest_db, tmp_path / "spool") as svc:
        yield svc


@pytest.fixture
def gateway_auth(registry: RegistryFile) -> dict[str, str]:
    secret = registry.gateways[0].secret
    assert secret is not None
    return {"Authorization": f"Bearer {secret}"}


def _letters(db: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(db) as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute("SELECT source, path, reason FROM dead_letters")]


def test_good_single_array_and_ndjson(
    service: ServiceThread, gateway_auth: dict[str, str], registry: RegistryFile, ingest_db: str
) -> None:
    d0 = registry.devices[0].id
    with httpx.Client(base_url=service.url, headers=gateway_auth) as http:
        single = http.post("/v1/telemetry", content=_body(d0, 1), headers={"content-type": "application/json"})
        array = http.post(
            "/v1/telemetry",
            content=b"[" + _body(d0, 2) + b"," + _body(d0, 3) + b"]",
            headers={"content-type": "application/json"},
        )
        ndjson = http.post(
            "/v1/telemetry",
            content=_body(d0, 4) + b"\n" + _body(d0, 5) + b"\n",
            headers={"content-type": "application/x-ndjson"},
        )
        again = http.post("/v1/telemetry", content=_body(d0, 1), headers={"content-type": "application/json"})
    assert [r.status_code for r in (single, array, ndjson, again)] == [202, 202, 202, 202]
    assert single.json()["accepted"] == 1
    assert array.json()["readings"] == 2
    assert again.json() == {"accepted": 0, "readings": 0, "duplicates": 1, "rejected": 0, "errors": []}
    with psycopg.connect(ingest_db) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (5,)


def test_partly_bad_batch_stores_the_good_and_reports_each_bad_item(
    service: ServiceThread, gateway_auth: dict[str, str], registry: RegistryFile, ingest_db: str
) -> None:
    d0, d_other_site = registry.devices[0].id, registry.devices[3].id
    items = [
        _body(d0, 10),
        b'{"device": "%s", "ts": 1780000000000, "seq": 11, "metrics": {"pipe_pressure_mpa": "x"}}' % d0.encode(),
        _body("nobody-here", 12),
        _body(d_other_site, 13),
        _body(d0, 14),
    ]
    with httpx.Client(base_url=service.url, headers=gateway_auth) as http:
        response = http.post(
            "/v1/telemetry", content=b"[" + b",".join(items) + b"]", headers={"content-type": "application/json"}
        )
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 3)
    by_index = {e["index"]: e for e in body["errors"]}
    assert by_index[1]["path"] == "[1].metrics.pipe_pressure_mpa"
    assert "expected a number" in by_index[1]["reason"]
    assert by_index[2]["code"] == "unknown_device"
    assert by_index[3]["code"] == "foreign_site"
    assert len(_letters(ingest_db)) == 3


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        ({"content-type": "application/json"}, b'{"device": ', 400, "invalid_telemetry"),
        ({"content-type": "text/plain"}, b"hello", 415, "unsupported_media_type"),
        ({"content-type": "application/json"}, b" " * (1024 * 1024 + 1), 413, "too_large"),
    ],
)
def test_whole_body_refusals(
    service: ServiceThread, gateway_auth: dict[str, str], headers: dict[str, str], body: bytes, status: int, error: str
) -> None:
    with httpx.Client(base_url=service.url, headers=gateway_auth) as http:
        response = http.post("/v1/telemetry", content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["reason"]


def test_malformed_body_is_dead_lettered_with_position(
    service: ServiceThread, gateway_auth: dict[str, str], ingest_db: str
) -> None:
    with httpx.Client(base_url=service.url, headers=gateway_auth) as http:
        response = http.post("/v1/telemetry", content=b'{"device": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "byte" in response.json()["reason"]
    letters = _letters(ingest_db)
    assert len(letters) == 1
    assert letters[0][0].startswith("http:")


def test_only_foreign_devices_is_403(
    service: ServiceThread, gateway_auth: dict[str, str], registry: RegistryFile
) -> None:
    with httpx.Client(base_url=service.url, headers=gateway_auth) as http:
        response = http.post(
            "/v1/telemetry", content=_body(registry.devices[3].id, 1), headers={"content-type": "application/json"}
        )
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "foreign_site"


def test_keys_and_roles(service: ServiceThread, ingest_db: str, registry: RegistryFile) -> None:
    with psycopg.connect(ingest_db) as conn:
        officer = create_api_key(conn, "desk-1", "officer")
    service.call(lambda: _reload(service))
    with httpx.Client(base_url=service.url) as http:
        assert http.post("/v1/telemetry", content=b"{}").status_code == 401
        bad = http.post("/v1/telemetry", content=b"{}", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        forbidden = http.post(
            "/v1/telemetry",
            content=_body(registry.devices[0].id, 1),
            headers={"Authorization": f"Bearer {officer}", "content-type": "application/json"},
        )
        assert forbidden.status_code == 403
        registry_put = http.put("/v1/registry", content=b"{}", headers={"Authorization": f"Bearer {officer}"})
        assert registry_put.status_code == 403


async def _reload(service: ServiceThread) -> None:
    await service.sentinel.reload_registry()


def test_full_queue_answers_503_with_retry_after(
    ingest_db: str, tmp_path: Path, gateway_auth: dict[str, str], registry: RegistryFile
) -> None:
    d0 = registry.devices[0].id
    with running_service(ingest_db, tmp_path / "spool", queue_max_batches=1) as svc, psycopg.connect(ingest_db) as lock:
        lock.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")  # the writer blocks on its COPY
        statuses: list[int] = []
        retry_after: list[str | None] = []

        def post(seq: int) -> None:
            with httpx.Client(base_url=svc.url, headers=gateway_auth, timeout=60) as http:
                r = http.post("/v1/telemetry", content=_body(d0, seq), headers={"content-type": "application/json"})
                statuses.append(r.status_code)
                retry_after.append(r.headers.get("retry-after"))

        threads = [threading.Thread(target=post, args=(seq,)) for seq in range(1, 6)]
        for t in threads:
            t.start()
            time.sleep(0.2)
        deadline = time.monotonic() + 10
        while statuses.count(503) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        lock.rollback()  # release the table; the queued ones complete
        for t in threads:
            t.join(30)
    assert 503 in statuses
    assert statuses.count(202) + statuses.count(503) == 5
    assert all(r == "1" for s, r in zip(statuses, retry_after, strict=True) if s == 503)
    with psycopg.connect(ingest_db) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (statuses.count(202),)
