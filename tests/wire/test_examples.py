"""The published examples: the decoder and the JSON Schemas give the verdicts and reasons expected.json promises."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from sentinel.errors import DecodeError
from sentinel.wire import contract, decode_batch, decode_event, decode_status, decode_telemetry
from sentinel.wire.messages import FLOAT_MAX
from tests.wire.support import EXAMPLES, KINDS, VALIDATORS, load_schema, schema_accepts

EXPECTED: dict[str, Any] = json.loads((EXAMPLES / "expected.json").read_text(encoding="utf-8"))
NOW_US = 1_795_867_200_000_000
DECODERS: dict[str, Callable[..., Any]] = {
    "telemetry": decode_telemetry,
    "batch": decode_batch,
    "event": decode_event,
    "status": decode_status,
}
SINGLE_BAD = {name: spec for name, spec in EXPECTED["bad"].items() if "path" in spec}


def test_now_matches_the_index() -> None:
    assert EXPECTED["now"] == "2026-11-28T12:00:00Z"
    raw = b'{"device":"d","status":"online","ts":"2026-11-28T12:00:00Z"}'
    assert decode_status(raw, now_us=NOW_US).ts_us == NOW_US


def test_every_example_file_is_listed() -> None:
    files = {p.name for p in EXAMPLES.glob("*.json")} - {"expected.json"}
    assert files == set(EXPECTED["good"]) | set(EXPECTED["bad"])


@pytest.mark.parametrize("name", sorted(EXPECTED["good"]))
def test_good_example_passes_decoder_and_schema(name: str) -> None:
    kind = EXPECTED["good"][name]["schema"]
    raw = (EXAMPLES / name).read_bytes()
    result = DECODERS[kind](raw, now_us=NOW_US)
    if kind == "batch":
        assert result.rejected == []
        assert len(result.messages) == len(json.loads(raw)["messages"])
    assert schema_accepts(kind, raw)


@pytest.mark.parametrize("name", sorted(SINGLE_BAD))
def test_bad_example_gets_its_reason(name: str) -> None:
    spec = SINGLE_BAD[name]
    raw = (EXAMPLES / name).read_bytes()
    with pytest.raises(DecodeError) as caught:
        DECODERS[spec["schema"]](raw, now_us=NOW_US)
    problem = caught.value.problem
    assert (problem.where, problem.what, str(problem.code)) == (spec["path"], spec["reason"], spec["code"])  # type: ignore[attr-defined]
    assert schema_accepts(spec["schema"], raw) is not spec["schema_rejects"]


def test_partly_bad_batch_keeps_the_good_items() -> None:
    spec = EXPECTED["bad"]["batch-partly-bad.json"]
    raw = (EXAMPLES / "batch-partly-bad.json").read_bytes()
    result = decode_batch(raw, now_us=NOW_US)
    assert len(result.messages) == spec["stored"]
    got = [
        {"index": r.index, "path": r.problem.where, "code": str(r.code), "reason": r.problem.what}
        for r in result.rejected
    ]
    assert got == spec["rejected"]
    items = json.loads(raw)["messages"]
    assert [VALIDATORS["telemetry"].is_valid(item) for item in items] == [
        i not in {r.index for r in result.rejected} for i in range(len(items))
    ]
    for rejected in result.rejected:  # each dead letter keeps only its own item's bytes
        assert rejected.index is not None
        assert json.loads(rejected.raw) == items[rejected.index]
    assert not schema_accepts("batch", raw)


def test_malformed_examples_give_a_byte_position() -> None:
    for name, spec in SINGLE_BAD.items():
        if spec["code"] == "malformed_json":
            assert re.search(r"byte \d+", spec["reason"]), name


@pytest.mark.parametrize("kind", KINDS)
def test_schemas_repeat_the_contract(kind: str) -> None:
    schema = load_schema(kind)
    VALIDATORS[kind].check_schema(schema)
    defs = schema["$defs"]
    assert defs["id"]["pattern"] == contract.ID_PATTERN
    assert defs["name"]["pattern"] == contract.METRIC_PATTERN
    as_string, as_int = defs["timestamp"]["anyOf"]
    assert as_string == {"type": "string", "format": "date-time", "pattern": contract.TIMESTAMP_PATTERN}
    assert (as_int["minimum"], as_int["maximum"]) == (contract.MIN_TS_MS, contract.MAX_TS_MS)
    assert defs["seq"]["maximum"] == contract.INT64_MAX
    assert defs["reading"]["anyOf"][0]["maximum"] == FLOAT_MAX
    metrics = defs["telemetry"]["properties"]["metrics"]
    assert metrics["maxProperties"] == contract.DEFAULT_MAX_METRICS
    if kind == "batch":
        assert schema["properties"]["messages"]["maxItems"] == contract.DEFAULT_MAX_BATCH_MESSAGES
    if kind == "event":
        assert schema["properties"]["note"]["maxLength"] == contract.NOTE_MAX_CHARS
    for example in schema["examples"]:
        assert VALIDATORS[kind].is_valid(example)
        DECODERS[kind](json.dumps(example).encode(), now_us=NOW_US)
