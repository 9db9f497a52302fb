"""schemathesis against the served OpenAPI document: every operation, called with a key that has the role it
needs (the gateway's for ingest, an admin's, which holds every role, elsewhere), gets no 5xx from any generated
request (valid, or negated into invalid), and every response matches the document (status code documented, body
matching its schema).

The ingest and ops operations are held to that strictly. The other operations (alerts, hazards, registry,
webhooks) are checked by the second test, which records what it finds; at the time of writing it found a 500 on
``PUT /v1/webhooks`` and undocumented 404/422 answers on alerts and hazards, owned by other parts of the project.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks

from sentinel.registry.entries import RegistryFile
from sentinel.registry.repository import create_api_key
from sentinel.testing.service import running_service

MINE = ("/v1/telemetry", "/healthz", "/readyz", "/metrics")
EXCLUDED = {"/v1/telemetry": [checks.positive_data_acceptance]}


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_ctx: Any, value: Any) -> bytes:
    items = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


Found = tuple[list[str], Counter[str], Counter[int]]


def _fuzz(db: str, spool: Path, registry: RegistryFile, *, mine: bool, examples: int) -> Found:
    with psycopg.connect(db) as conn:
        admin = create_api_key(conn, "fuzz-admin", "admin")
    gateway = registry.gateways[0].secret
    failures: list[str] = []
    mismatches: Counter[str] = Counter()
    seen: Counter[int] = Counter()
    samples: list[str] = []
    with running_service(db, spool) as svc:
        schema = schemathesis.openapi.from_url(f"{svc.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        chosen = [op for op in operations if any(op.path.startswith(p) for p in MINE) == mine]
        assert chosen, [op.label for op in operations]
        strategy = st.one_of(*[op.as_strategy(generation_mode=mode) for op in chosen for mode in GenerationMode])

        @given(case=strategy)
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case: Any) -> None:
            key = gateway if case.path.startswith("/v1/telemetry") else admin
            response = case.call(base_url=svc.url, headers={"Authorization": f"Bearer {key}"})
            seen[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path}: {response.status_code} {response.text[:300]}")
            try:
                # Telemetry valid by the schema may still be refused for what a schema cannot say (a time hours
                # ahead of the receiver's clock, an unknown device): not a mismatch. A body over the size limit
                # is refused with 413, which this check does not count as a rejection.
                case.validate_response(response, excluded_checks=EXCLUDED.get(case.path, []))
            except BaseExceptionGroup as group:  # schemathesis reports every mismatch of a response as one group
                for exc in group.exceptions:
                    if response.status_code == 413 and type(exc).__name__ == "AcceptedNegativeData":
                        continue  # refused for its size: a rejection this check does not list
                    mismatches[f"{case.operation.label} {response.status_code}: {type(exc).__name__}"] += 1
                    if len(samples) < 8:
                        samples.append(f"{type(exc).__name__} {response.text[:200]} <- {str(case.body)[:200]}")

        call()
    print(f"\nstatus codes {dict(seen)}; 5xx {failures[:5]}; schema mismatches {dict(mismatches)}")
    print("\n".join(samples))
    return failures, mismatches, seen


def test_ingest_and_ops_routes_never_5xx_and_match_the_schema(
    ingest_db: str, tmp_path: Path, registry: RegistryFile
) -> None:
    failures, mismatches, seen = _fuzz(ingest_db, tmp_path / "spool", registry, mine=True, examples=300)
    assert failures == []
    assert dict(mismatches) == {}
    # The run reached the handlers, not only the door: valid bodies for unknown devices (403), invalid ones (400).
    assert sum(seen.values()) >= 100, seen
    assert {400, 403} <= set(seen), seen


@pytest.mark.xfail(reason="other areas' routes: PUT /v1/webhooks 500, undocumented 404/422 (see module doc)")
def test_every_other_route_never_5xx_and_matches_the_schema(
    ingest_db: str, tmp_path: Path, registry: RegistryFile
) -> None:
    failures, mismatches, _seen = _fuzz(ingest_db, tmp_path / "spool", registry, mine=False, examples=300)
    assert failures == []
    assert dict(mismatches) == {}
