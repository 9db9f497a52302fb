"""Evidence files of the hazard register (photos and PDFs of a rectification), stored in PostgreSQL.

A file is kept whole in ``hazard_evidence`` (bytea) beside its item, so it is backed up and restored with the
register and needs no shared file system. Its type is judged by its first bytes, never by the name or the
browser's claim. A stored file is referred to from the item's events as ``evidence:<id>:<name>``: the reference a
transition such as ``request_verification`` needs.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import psycopg

SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)


def sniff(data: bytes) -> str | None:
    """The content type of a photo or PDF from its first bytes; None for anything else."""
    for magic, kind in SIGNATURES:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def add_evidence(
    conn: psycopg.Connection[Any],
    hazard_id: int,
    filename: str,
    data: bytes,
    actor: str,
    now: datetime,
    *,
    max_bytes: int,
) -> str:
    """Store one file for ``hazard_id``; returns its reference. ValueError for an empty, too large or foreign file."""
    name = (filename or "file").replace("\\", "/").rsplit("/", 1)[-1][:200] or "file"
    if not data:
        raise ValueError(f"evidence {name}: the file is empty")
    if len(data) > max_bytes:
        raise ValueError(f"evidence {name}: {len(data)} bytes is over the limit of {max_bytes} bytes")
    kind = sniff(data)
    if kind is None:
        raise ValueError(f"evidence {name}: only photos (JPEG, PNG, GIF, WebP) and PDF files are accepted")
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT 1 FROM hazards WHERE hazard_id = %s", (hazard_id,))
        if cur.fetchone() is None:
            raise LookupError(f"hazard {hazard_id} does not exist")
        cur.execute(
            """INSERT INTO hazard_evidence (hazard_id, filename, content_type, size_bytes, sha256, data,
                                            uploaded_by, uploaded_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING evidence_id""",
            (hazard_id, name, kind, len(data), hashlib.sha256(data).hexdigest(), data, actor, now),
        )
        row = cur.fetchone()
        assert row is not None
    return f"evidence:{row[0]}:{name}"


def list_evidence(conn: psycopg.Connection[Any], hazard_id: int) -> list[dict[str, Any]]:
    cur = conn.execute(
        """SELECT evidence_id, filename, content_type, size_bytes, sha256, uploaded_by, uploaded_at
           FROM hazard_evidence WHERE hazard_id = %s ORDER BY evidence_id""",
        (hazard_id,),
    )
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def get_evidence(conn: psycopg.Connection[Any], evidence_id: int) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of one stored file."""
    row = conn.execute(
        "SELECT filename, content_type, data FROM hazard_evidence WHERE evidence_id = %s", (evidence_id,)
    ).fetchone()
    if row is None:
        raise LookupError(f"evidence {evidence_id} does not exist")
    return str(row[0]), str(row[1]), bytes(row[2])
