"""Binary COPY built by numpy stores exactly the values given (property test against real PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.batch import ReadingBatch
from sentinel.store.readings import ReadingsWriter
from tests.examples import examples

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
rows = st.lists(
    st.tuples(
        # 2000-01-01 .. 2099: before 2000 exercises negative PostgreSQL timestamps too.
        st.integers(min_value=-10 * 365 * 86_400_000_000, max_value=4_000_000_000_000_000),
        st.integers(min_value=-(2**31), max_value=2**31 - 1),
        st.integers(min_value=-(2**15), max_value=2**15 - 1),
        st.floats(allow_nan=False),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=rows)
def test_copy_round_trip(migrated_db: str, data: list[tuple[int, int, int, float]]) -> None:
    columns = ReadingBatch(
        ts_us=np.array([r[0] for r in data], dtype=np.int64),
        device_id=np.array([r[1] for r in data], dtype=np.int32),
        metric_id=np.array([r[2] for r in data], dtype=np.int16),
        value=np.array([r[3] for r in data], dtype=np.float64),
    )
    with psycopg.connect(migrated_db) as conn:
        ReadingsWriter("native").write(conn, columns)
        got = conn.execute("SELECT ts, device_id, metric_id, value FROM readings").fetchall()
        conn.rollback()
    expected = sorted((EPOCH + dt.timedelta(microseconds=t), d, m, v) for t, d, m, v in data)
    assert sorted(got) == expected
