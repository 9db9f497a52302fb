"""Readings store: a TimescaleDB hypertable when the extension can be created, else native daily partitions.

Both dialects create the same table and view names (readings, readings_1m), so every query above them is the same.
The chosen dialect is recorded in sentinel_meta.readings_dialect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yoyo import step

__depends__ = {"0001_core"}
# CREATE MATERIALIZED VIEW ... WITH (timescaledb.continuous) refuses to run inside a transaction block.
__transactional__ = False

DIALECTS = Path(__file__).resolve().parent.parent / "dialects"


def _timescale_available(cursor: Any) -> bool:
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    if cursor.fetchone() is None:
        return False
    # Listed is not enough: the library must also be preloaded, which only CREATE EXTENSION can tell.
    try:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except Exception:
        return False
    return True


def apply(conn: Any) -> None:
    cursor = conn.cursor()
    dialect = "timescale" if _timescale_available(cursor) else "native"
    cursor.execute((DIALECTS / f"readings_{dialect}.sql").read_text(encoding="utf-8"))


steps = [step(apply)]
