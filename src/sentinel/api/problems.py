"""The API's error answers as the OpenAPI document states them: one JSON body ``{"error", "reason", "path", ...}``
(the handlers in :mod:`sentinel.api.app` and the routes' ``HTTPException`` details), and per route the codes it
really gives, so a client (and schemathesis, tests/ingest/test_http_fuzz.py) can rely on the document.

``answers(404, 409)`` is a route's ``responses=``; :data:`KEYED` (401, 403, 422, 503) is what every route behind an
API key may answer. Inputs that reach PostgreSQL are constrained in the document too: text without NUL characters
(:data:`Text`, PostgreSQL cannot store them), required text not blank (:data:`Said`), ids within ``bigint``
(:data:`RowId`), times with an offset.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "KEYED",
    "NO_NUL",
    "SAID",
    "ErrorBody",
    "Instant",
    "QueryText",
    "RowId",
    "Said",
    "Text",
    "answers",
    "choice",
]

NO_NUL = r"^[^\x00]*$"
NO_NUL_REASON = "must not contain the NUL character (U+0000)"
# Python's whitespace (str.isspace), so that text matching SAID is never blank to the domain's ``.strip()``.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SAID = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"
SAID_REASON = "must say something: a visible character, and no NUL character (U+0000)"
BIGINT_MAX = 2**63 - 1


class ErrorBody(BaseModel):
    """Every error answer: a machine code, a reason a person can act on, and where (``path``) when one field is
    at fault; some add fields (a refused transition names ``from`` and ``to``)."""

    model_config = ConfigDict(extra="allow")

    error: str
    reason: str
    path: str = ""


DESCRIPTIONS = {
    400: "invalid request body",
    401: "missing or unknown API key",
    403: "the key's role may not do this",
    404: "no such record",
    409: "refused by the state machine: the reason says why (with from and to)",
    413: "body too large",
    422: "invalid request: the reason names the field and what is wrong",
    503: "database unavailable; retry after the Retry-After seconds",
}


def answers(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for these codes with the error body; ``descriptions`` overrides by code (``_404="..."``)."""
    return {
        code: {"model": ErrorBody, "description": descriptions.get(f"_{code}", DESCRIPTIONS.get(code, "error"))}
        for code in codes
    }


KEYED = answers(401, 403, 422, 503)


def choice(values: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The document's ``enum`` for a text field whose values the domain checks (its refusal is a 422 naming them)."""
    return {"enum": list(values)}


Text = Annotated[str, Field(pattern=NO_NUL)]
Said = Annotated[str, Field(pattern=SAID)]  # required text that is not blank (a reason, a title)
QueryText = Annotated[str | None, Query(pattern=NO_NUL)]
RowId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]

# RFC 3339 with its offset, as the OpenAPI document's ``format: date-time`` promises. Pydantic alone would also take a
# number (seconds since 1970) or a date with a space before the time, which the document calls invalid.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.match(value)):
        return value
    raise ValueError("must be a date and time with its offset (RFC 3339), e.g. 2026-12-05T08:00:00+08:00")


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
