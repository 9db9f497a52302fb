"""The engine runner's SQL: its checkpoint row and the replay of readings committed after a position.

``engine_checkpoint`` holds one row: the position (commit stamp ``position_seq`` and ``received_at`` in µs of the
newest batch whose transitions are written), the engine's device order and its snapshot. :func:`replay_rows` reads
back every reading of a message committed after a position (rows older than commit stamps: received after it), in
commit order, for :mod:`sentinel.engine.runner`'s catch-up. The registry query the runner builds the engine from is
:func:`device_rows`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg

RECEIVED_AFTER = "(extract(epoch FROM received_at) * 1000000)::bigint > %(pos)s"
REPLAY_SQL = """
WITH m AS (
    SELECT device_id, seq, ts, (extract(epoch FROM received_at) * 1000000)::bigint AS rec, commit_seq
    FROM message_log WHERE {where}
)
SELECT m.rec, r.device_id, r.metric_id, (extract(epoch FROM r.ts) * 1000000)::bigint, r.value, m.seq,
       coalesce(m.commit_seq, 0)
FROM m JOIN readings r ON r.device_id = m.device_id AND r.ts = m.ts
WHERE r.ts >= (SELECT min(ts) FROM m)
ORDER BY m.commit_seq NULLS FIRST, m.rec, m.device_id, m.seq, r.metric_id
"""
# After a checkpoint: every row committed after it (rows older than commit stamps: by arrival). Without one: the
# rows received in the rebuild window.
REPLAY_AFTER_CHECKPOINT = REPLAY_SQL.format(where=f"commit_seq > %(seq)s OR (commit_seq IS NULL AND {RECEIVED_AFTER})")
REPLAY_WINDOW = REPLAY_SQL.format(where=RECEIVED_AFTER)


@dataclass(frozen=True)
class Checkpoint:
    position_us: int
    position_seq: int | None
    devices: list[str]
    snapshot: bytes


def load_checkpoint(conn: psycopg.Connection[Any]) -> Checkpoint | None:
    row = conn.execute("SELECT position_us, devices, snapshot, position_seq FROM engine_checkpoint").fetchone()
    if row is None:
        return None
    return Checkpoint(int(row[0]), None if row[3] is None else int(row[3]), json.loads(row[1]), bytes(row[2]))


def save_checkpoint(
    conn: psycopg.Connection[Any], position_us: int, position_seq: int | None, devices: list[str], snapshot: bytes
) -> None:
    conn.execute(
        """INSERT INTO engine_checkpoint (id, position_us, position_seq, devices, snapshot, saved_at)
           VALUES (1, %s, %s, %s, %s, now())
           ON CONFLICT (id) DO UPDATE SET position_us = excluded.position_us,
               position_seq = excluded.position_seq, devices = excluded.devices,
               snapshot = excluded.snapshot, saved_at = excluded.saved_at""",
        (position_us, position_seq, json.dumps(devices), snapshot),
    )


def replay_rows(conn: psycopg.Connection[Any], position_us: int, position_seq: int | None) -> list[tuple[Any, ...]]:
    """Readings of messages committed after the position (by arrival when ``position_seq`` is None)."""
    if position_seq is None:
        return conn.execute(REPLAY_WINDOW, {"pos": position_us}).fetchall()
    return conn.execute(REPLAY_AFTER_CHECKPOINT, {"pos": position_us, "seq": position_seq}).fetchall()


def device_rows(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """In-service devices with what the engine needs: id, name, class, site, sector, interval, attrs."""
    return conn.execute(
        """SELECT d.device_id, d.device, d.device_class, d.site_id, s.sector, d.expected_interval_s, d.attrs
           FROM devices d JOIN sites s USING (site_id) WHERE d.in_service ORDER BY d.device_id"""
    ).fetchall()


def site_attrs(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT site_id, attrs FROM sites").fetchall()


def metric_rows(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT metric_id, metric FROM metrics").fetchall()
