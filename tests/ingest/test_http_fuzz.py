"""schemathesis against the served OpenAPI document: no generated request (valid, or negated into invalid) gets a
5xx from any operation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from sentinel.registry.entries import RegistryFile
from sentinel.testing.service import running_service


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_ctx: Any, value: Any) -> bytes:
    items = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def test_no_server_errors(ingest_db: str, tmp_path: Path, registry: RegistryFile) -> None:
    auth = {"Authorization": f"Bearer {registry.gateways[0].secret}"}
    with running_service(ingest_db, tmp_path / "spool") as svc:
        schema = schemathesis.openapi.from_url(f"{svc.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert any(op.label == "POST /v1/telemetry" for op in operations)
        strategy = st.one_of(*[op.as_strategy(generation_mode=mode) for op in operations for mode in GenerationMode])
        failures: list[str] = []
        seen: dict[int, int] = {}

        @given(case=strategy)
        @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: Any) -> None:
            response = case.call(base_url=svc.url, headers=auth)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path}: {response.status_code} {response.text[:300]}")

        call()
    assert failures == []
    # The run reached the handlers, not only the door: valid bodies for unknown devices (403), invalid ones (400).
    assert sum(seen.values()) >= 100, seen
    assert {400, 403} <= set(seen), seen
