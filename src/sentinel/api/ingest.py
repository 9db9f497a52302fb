"""HTTP collector: ``POST /v1/telemetry`` with JSON (one message, an array, or ``{"messages": [...]}``) or NDJSON.

Answers: 202 with counts and per-item errors (a partly bad body stores its good items); 400 when nothing in the
body is valid telemetry; 401 without a valid key; 403 when the key may not ingest or every item names a device
the key may not write for; 413 over the size limit; 415 for another content type; 503 with Retry-After when the
ingest queue is full. Every refused body or item is stored as a dead letter with its reason.

One size limit for a body, the same as for one MQTT payload: ``SENTINEL_MAX_PAYLOAD_BYTES`` (1 MiB by default, the
sink's ``limits.max_payload_bytes``). A body whose processing raises unexpectedly is answered 400 with code
``internal`` and kept as a dead letter, never 500 (the exception type is logged and named; its text is not sent).

Who may post: a gateway key for the sites its gateway is bound to; an admin key for any site (admins are trusted
with the whole registry, and may need to backfill a site whose gateway is down; its dead letters name the key).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from sentinel.api.auth import require
from sentinel.api.context import context
from sentinel.errors import BackpressureError, DecodeError
from sentinel.ingest.admission import Admission, Admitted
from sentinel.registry.repository import ApiKey
from sentinel.resources import data_dir
from sentinel.wire import WireLimits, dead_letters, decode_http_body, encode_telemetry, http_source
from sentinel.wire.deadletter import INTERNAL, DeadLetter, internal_letter
from sentinel.wire.decode import Rejected

log = logging.getLogger(__name__)

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
REGISTRY_CODES = {"unknown_device", "foreign_site"}

router = APIRouter(tags=["ingest"])


class ItemErrorOut(BaseModel):
    index: int | None
    path: str
    reason: str
    code: str


class IngestResult(BaseModel):
    accepted: int
    readings: int
    duplicates: int
    rejected: int
    errors: list[ItemErrorOut]


class ErrorBody(BaseModel):
    error: str
    reason: str
    path: str = ""
    errors: list[ItemErrorOut] = []


def _load_schema(name: str) -> dict[str, Any]:
    try:
        schema: dict[str, Any] = json.loads((data_dir("schemas") / name).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {"type": "object"}
    return schema


def _rewrite_refs(node: Any) -> Any:
    """The published schemas refer to ``#/$defs/x``; inside OpenAPI they live at ``#/components/schemas/x``."""
    if isinstance(node, dict):
        return {
            k: (
                v.replace("#/$defs/", "#/components/schemas/")
                if k == "$ref" and isinstance(v, str)
                else _rewrite_refs(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def wire_components() -> dict[str, Any]:
    """The wire contract's definitions (schemas/), for the OpenAPI document's components.schemas."""
    components: dict[str, Any] = {}
    for name, key in (("telemetry.schema.json", "telemetry"), ("batch.schema.json", "batch")):
        schema = _load_schema(name)
        for def_name, definition in schema.get("$defs", {}).items():
            components[def_name] = _rewrite_refs(definition)
        if key not in components:
            body = {k: v for k, v in schema.items() if k not in ("$schema", "$id", "$defs", "examples")}
            components[key] = _rewrite_refs(body)
    return components


_TELEMETRY = {"$ref": "#/components/schemas/telemetry"}
_BATCH = {"$ref": "#/components/schemas/batch"}


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "nothing in the body is valid telemetry",
        401: "missing or unknown API key",
        403: "the key may not ingest, or every item names a device outside its sites",
        413: "body too large",
        415: "unsupported content type",
        503: "ingest queue full; retry after the Retry-After seconds",
    }.items()
}


def _fail(status: int, error: str, reason: str, path: str = "", errors: list[ItemErrorOut] | None = None) -> NoReturn:
    body = ErrorBody(error=error, reason=reason, path=path, errors=errors or [])
    raise HTTPException(status, detail=body.model_dump())


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        _fail(413, "too_large", f"body is {declared} bytes, the limit is {limit} (SENTINEL_MAX_PAYLOAD_BYTES)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            _fail(413, "too_large", f"body exceeds {limit} bytes (SENTINEL_MAX_PAYLOAD_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


class _Refused(Exception):
    """A whole body refused: its dead letter and the error word of the 400."""

    def __init__(self, letter: DeadLetter, error: str) -> None:
        super().__init__(letter.reason)
        self.letter = letter
        self.error = error


def _admit(
    admission: Admission,
    body: bytes,
    ndjson: bool,
    key: ApiKey,
    source: str,
    now_us: int,
    limits: WireLimits,
) -> tuple[Admitted, list[ItemErrorOut], int]:
    """Decode and admit a body: (admitted, per-item errors, items received). Raises _Refused for a body refused
    as a whole, including one whose processing raised (code internal: a defect, set aside, never a 500)."""
    try:
        return _admit_body(admission, body, ndjson, key, source, now_us, limits)
    except DecodeError as exc:
        letters = dead_letters([Rejected(exc.problem, body)], source, _utc(now_us))  # type: ignore[arg-type]
        raise _Refused(letters[0], "invalid_telemetry") from None
    except Exception as exc:
        log.error(
            "HTTP body from %s set aside as a dead letter: processing raised %s",
            source,
            type(exc).__name__,
            exc_info=exc,
        )
        raise _Refused(internal_letter(body, source, _utc(now_us), exc), INTERNAL) from None


def _admit_body(
    admission: Admission,
    body: bytes,
    ndjson: bool,
    key: ApiKey,
    source: str,
    now_us: int,
    limits: WireLimits,
) -> tuple[Admitted, list[ItemErrorOut], int]:
    decoded = decode_http_body(body, ndjson=ndjson, now_us=now_us, limits=limits)
    sender = admission.sender_for_key(key, source)
    refused = {r.index for r in decoded.rejected}
    total = len(decoded.messages) + len(decoded.rejected)
    indices: list[int | None] = [i for i in range(total) if i not in refused]
    del indices[len(decoded.messages) :]
    messages = decoded.messages
    admission.dedup.begin()
    try:
        admitted = admission.telemetry(
            messages,
            [sender] * len(messages),
            now_us,
            raw_of=lambda k: encode_telemetry(messages[k]),
            indices=indices,
            path_prefix=lambda i: "" if i is None else f"[{i}]",
        )
    except Exception:
        admission.dedup.rollback()  # its pending marks must not shadow the body sent again
        raise
    finally:
        admission.dedup.end()
    wire_errors = [
        ItemErrorOut(index=r.index, path=r.problem.where, reason=r.problem.what, code=str(r.problem.code))
        for r in decoded.rejected
    ]
    errors = wire_errors + [
        ItemErrorOut(index=e.index, path=e.path, reason=e.reason, code=e.code) for e in admitted.errors
    ]
    admitted.batch.dead_letters = dead_letters(decoded.rejected, source, _utc(now_us)) + admitted.batch.dead_letters
    return admitted, errors, total


@router.post(
    "/v1/telemetry",
    status_code=202,
    response_model=IngestResult,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"oneOf": [_TELEMETRY, {"type": "array", "items": _TELEMETRY}, _BATCH]}},
                # Described as the array of messages its lines hold, one JSON document per line.
                "application/x-ndjson": {"schema": {"type": "array", "items": _TELEMETRY}},
            },
        }
    },
)
async def post_telemetry(request: Request, key: Annotated[ApiKey, Depends(require("gateway"))]) -> IngestResult:
    """Ingest telemetry for the sites the key's gateway is bound to."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_TYPES + NDJSON_TYPES:
        _fail(415, "unsupported_media_type", f"send {JSON_TYPES[0]} or {NDJSON_TYPES[0]}, not {media or 'nothing'}")
    ctx = context(request)
    sink = ctx.sink
    limits: WireLimits = sink.limits
    body = await _read_body(request, limits.max_payload_bytes)
    source = http_source(key.gateway or key.name)
    now_us = sink.clock()
    try:
        admitted, errors, total = _admit(ctx.admission, body, media in NDJSON_TYPES, key, source, now_us, limits)
    except _Refused as refused:
        await sink.refuse([refused.letter])
        _fail(400, refused.error, refused.letter.reason, refused.letter.path)
    try:
        await sink.http(admitted, received=total)
    except BackpressureError as exc:
        raise HTTPException(
            503,
            detail=ErrorBody(error="busy", reason=str(exc)).model_dump(),
            headers={"Retry-After": str(max(1, round(exc.retry_after_s)))},
        ) from exc
    if admitted.accepted_messages == 0 and admitted.batch.duplicates == 0 and errors:
        registry_only = all(e.code in REGISTRY_CODES for e in errors)
        status = 403 if registry_only else 400
        _fail(status, "forbidden" if registry_only else "invalid_telemetry", errors[0].reason, errors[0].path, errors)
    return IngestResult(
        accepted=admitted.accepted_messages,
        readings=len(admitted.batch.readings),
        duplicates=admitted.batch.duplicates,
        rejected=len(errors),
        errors=errors,
    )


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC)
