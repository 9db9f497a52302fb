"""The msgspec decoder and the published JSON Schemas accept and refuse the same inputs.

Generated cases are mostly well-formed with fields sometimes missing, mistyped, out of range or unknown. The
receiver's clock is put past the last representable time, so the one rule a schema cannot state (not too far in
the future) does not take part; it is tested in test_decode.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.errors import DecodeError
from sentinel.wire import (
    contract,
    decode_array,
    decode_batch,
    decode_event,
    decode_ndjson,
    decode_status,
    decode_telemetry,
)
from tests.examples import examples
from tests.wire.strategies import event_like, json_values, status_like, telemetry_like
from tests.wire.support import VALIDATORS, parent_path, resolve, schema_error_paths

FAR_FUTURE_US = (contract.MAX_TS_MS + 2 * 86_400_000) * 1000
FAST = settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _verdict(kind: str, decode: Callable[..., Any], message: dict[str, Any]) -> None:
    raw = json.dumps(message).encode()
    schema_ok = VALIDATORS[kind].is_valid(message)
    try:
        decode(raw, now_us=FAR_FUTURE_US)
    except DecodeError as exc:
        problem = exc.problem
        assert not schema_ok, f"decoder refused what the schema accepts: {problem}"
        assert "rejected by the decoder" not in problem.what, "the explainer missed a constraint"
        # The path names a real place: the field itself, or (missing field) the object that lacks it.
        found, _ = resolve(message, problem.where)
        parent_found, parent = resolve(message, parent_path(problem.where))
        assert found or (parent_found and isinstance(parent, dict)), problem
        # ... and the schema complains there too (at the field, or at its object for names and required).
        paths = schema_error_paths(kind, message)
        assert problem.where in paths or parent_path(problem.where) in paths, (problem, paths)
        return
    assert schema_ok, "decoder accepted what the schema refuses"


@FAST
@given(telemetry_like)
def test_telemetry_verdicts_agree(message: dict[str, Any]) -> None:
    _verdict("telemetry", decode_telemetry, message)


@FAST
@given(event_like)
def test_event_verdicts_agree(message: dict[str, Any]) -> None:
    _verdict("event", decode_event, message)


@FAST
@given(status_like)
def test_status_verdicts_agree(message: dict[str, Any]) -> None:
    _verdict("status", decode_status, message)


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(telemetry_like, max_size=8))
def test_batch_items_are_judged_like_single_messages(items: list[dict[str, Any]]) -> None:
    envelope = {"messages": items}
    result = decode_batch(json.dumps(envelope).encode(), now_us=FAR_FUTURE_US)
    bad = {i for i, item in enumerate(items) if not VALIDATORS["telemetry"].is_valid(item)}
    assert {r.index for r in result.rejected} == bad
    assert len(result.messages) == len(items) - len(bad)
    assert VALIDATORS["batch"].is_valid(envelope) == (not bad)
    for rejected in result.rejected:
        assert rejected.problem.where.startswith(f"messages[{rejected.index}]")
        assert json.loads(rejected.raw) == items[rejected.index or 0]


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(telemetry_like, max_size=8))
def test_array_ndjson_and_batch_bodies_agree(items: list[dict[str, Any]]) -> None:
    as_batch = decode_batch(json.dumps({"messages": items}).encode(), now_us=FAR_FUTURE_US)
    as_array = decode_array(json.dumps(items).encode(), now_us=FAR_FUTURE_US)
    as_lines = decode_ndjson("\n".join(json.dumps(i) for i in items).encode(), now_us=FAR_FUTURE_US)
    for other in (as_array, as_lines):
        assert other.messages == as_batch.messages
        assert [(r.index, r.problem.what) for r in other.rejected] == [
            (r.index, r.problem.what) for r in as_batch.rejected
        ]
        assert [r.problem.where for r in other.rejected] == [
            r.problem.where.removeprefix("messages") for r in as_batch.rejected
        ]


envelopes = st.fixed_dictionaries(
    {},
    optional={
        "messages": st.lists(telemetry_like, max_size=3) | json_values,
        "gateway": st.text(max_size=4),
    },
)


@settings(max_examples=examples(150), deadline=None)
@given(envelopes)
def test_batch_envelope_verdicts_agree(envelope: dict[str, Any]) -> None:
    schema_ok = VALIDATORS["batch"].is_valid(envelope)
    try:
        result = decode_batch(json.dumps(envelope).encode(), now_us=FAR_FUTURE_US)
    except DecodeError as exc:
        problem = exc.problem
        assert not schema_ok
        assert problem.where in {"", "messages", "gateway"}, problem
        return
    assert schema_ok == (not result.rejected)
