"""Register statistics: stock (存量), increment (增量) and closure rate by sector, township and period.

For a period ``[start, end)`` and each group (sector, township, or both):

* ``stock_start``: entries created before ``start`` and not closed before ``start``;
* ``increment``: entries created in the period;
* ``closed``: entries closed (销号) in the period;
* ``stock_end``: entries created before ``end`` and not closed before ``end`` (= stock_start + increment - closed);
* ``closure_rate``: closed / (stock_start + increment), ``None`` when nothing was open to close.

``level`` narrows to major (or general) items once classified; unclassified entries count under no level filter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

GROUPINGS = {"sector": ("sector",), "township": ("township",), "both": ("sector", "township")}


def statistics(
    conn: psycopg.Connection[Any], start: datetime, end: datetime, by: str = "sector", level: str | None = None
) -> list[dict[str, Any]]:
    if by not in GROUPINGS:
        raise ValueError(f"by: {by!r} is not one of {', '.join(GROUPINGS)}")
    if end <= start:
        raise ValueError("period: end must be after start")
    keys = GROUPINGS[by]
    group = ", ".join(keys)
    rows = conn.execute(
        f"""SELECT {group},
                   count(*) FILTER (WHERE created_at < %(start)s AND (closed_at IS NULL OR closed_at >= %(start)s)),
                   count(*) FILTER (WHERE created_at >= %(start)s AND created_at < %(end)s),
                   count(*) FILTER (WHERE closed_at >= %(start)s AND closed_at < %(end)s),
                   count(*) FILTER (WHERE created_at < %(end)s AND (closed_at IS NULL OR closed_at >= %(end)s))
            FROM hazards WHERE (%(level)s::text IS NULL OR level = %(level)s) AND created_at < %(end)s
            GROUP BY {group} ORDER BY {group}""",
        {"start": start, "end": end, "level": level},
    ).fetchall()
    out = []
    for row in rows:
        stock_start, increment, closed, stock_end = (int(v) for v in row[len(keys) :])
        base = stock_start + increment
        entry: dict[str, Any] = dict(zip(keys, row[: len(keys)], strict=True))
        entry |= {
            "stock_start": stock_start,
            "increment": increment,
            "closed": closed,
            "stock_end": stock_end,
            "closure_rate": round(closed / base, 4) if base else None,
        }
        out.append(entry)
    return out
