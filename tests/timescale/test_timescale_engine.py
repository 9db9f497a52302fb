"""The TimescaleDB SQL of FINDINGS.md works on the pglite engine, and the engine behaves as FINDINGS.md says.

The schema tests run the ``<!-- sql:schema -->`` block of FINDINGS.md verbatim, in their own PostgreSQL schema
of the session engine, so the document the migrations are written from is the thing under test.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
import re
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import errors as pg_errors

from sentinel.testing.pglite import PID_FILE_NAME, pglite_timescale

pytestmark = pytest.mark.timescale

FINDINGS = Path(__file__).resolve().parent / "FINDINGS.md"
PGLITE_PACKAGE_DIR = Path(__file__).resolve().parent / "pglite"
SCHEMA = "engine_probe"
UTC = dt.UTC


def findings_sql(name: str) -> str:
    """The ```sql block right after the ``<!-- sql:NAME -->`` marker in FINDINGS.md."""
    text = FINDINGS.read_text(encoding="utf-8")
    match = re.search(rf"<!-- sql:{re.escape(name)} -->\s*```sql\n(.*?)```", text, re.DOTALL)
    if match is None:
        raise AssertionError(f"{FINDINGS}: no ```sql block after <!-- sql:{name} -->")
    return match.group(1)


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    """A connection that sees this module's schema first (the engine resets search_path between clients)."""
    conn = psycopg.connect(url, autocommit=autocommit)
    conn.execute(f"SET search_path TO {SCHEMA}, public")
    return conn


@pytest.fixture(scope="module")
def probe_url(timescale_url: str) -> str:
    """The session engine with FINDINGS.md's schema created under ``engine_probe``."""
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        # Install the extension into public first: with engine_probe first on the search_path, the block's
        # CREATE EXTENSION would otherwise put TimescaleDB's functions into engine_probe.
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb WITH SCHEMA public")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
    with connect(timescale_url, autocommit=False) as conn:
        conn.execute(findings_sql("schema"))  # one execute, inside a transaction, as FINDINGS.md says
    return timescale_url


def job_id(conn: psycopg.Connection[tuple[object, ...]], proc_name: str) -> int:
    row = conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = %s AND hypertable_schema = %s",
        (proc_name, SCHEMA),
    ).fetchone()
    assert row is not None, f"no {proc_name} job on {SCHEMA}"
    job = row[0]
    assert isinstance(job, int)
    return job


_device_ids = itertools.count(10_000)


def insert_readings(
    conn: psycopg.Connection[tuple[object, ...]], rows: list[tuple[dt.datetime, int, int, float]]
) -> None:
    """One multi-row INSERT with server-side parameters (COPY is not available on this engine)."""
    placeholders = ",".join(["(%s, %s, %s, %s)"] * len(rows))
    conn.execute(f"INSERT INTO readings VALUES {placeholders}", [x for row in rows for x in row])


def test_timescaledb_version_is_2_23(probe_url: str) -> None:
    with connect(probe_url) as conn:
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    assert row is not None
    assert str(row[0]).startswith("2.23")


def test_readings_is_a_hypertable_of_one_day_chunks_with_compression(probe_url: str) -> None:
    with connect(probe_url) as conn:
        hypertables = conn.execute(
            "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"
            " WHERE hypertable_schema = %s",
            (SCHEMA,),
        ).fetchall()
        dimensions = conn.execute(
            "SELECT column_name, time_interval FROM timescaledb_information.dimensions"
            " WHERE hypertable_schema = %s AND hypertable_name = 'readings'",
            (SCHEMA,),
        ).fetchall()
        compression = conn.execute(
            "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc"
            " FROM timescaledb_information.compression_settings"
            " WHERE hypertable_schema = %s AND hypertable_name = 'readings' ORDER BY attname",
            (SCHEMA,),
        ).fetchall()
    assert hypertables == [("readings", True)]
    assert dimensions == [("ts", dt.timedelta(days=1))]
    assert compression == [("device_id", 1, None, None), ("metric_id", 2, None, None), ("ts", None, 1, True)]


def test_policies_and_continuous_aggregate_exist(probe_url: str) -> None:
    with connect(probe_url) as conn:
        caggs = conn.execute(
            "SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = %s",
            (SCHEMA,),
        ).fetchall()
        jobs = conn.execute(
            "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs"
            " WHERE hypertable_schema = %s ORDER BY proc_name",
            (SCHEMA,),
        ).fetchall()
    assert caggs == [("readings_1m",)]
    by_proc = {proc: (table, config) for proc, table, config in jobs}
    assert set(by_proc) == {"policy_compression", "policy_retention", "policy_refresh_continuous_aggregate"}
    assert by_proc["policy_compression"][0] == "readings"
    assert by_proc["policy_compression"][1]["compress_after"] == "7 days"  # type: ignore[index]
    assert by_proc["policy_retention"][1]["drop_after"] == "90 days"  # type: ignore[index]
    assert by_proc["policy_refresh_continuous_aggregate"][0] == "readings_1m"
    assert by_proc["policy_refresh_continuous_aggregate"][1]["start_offset"] == "1 day"  # type: ignore[index]


@pytest.fixture(scope="module")
def rollup_base() -> dt.datetime:
    """A minute boundary two hours ago: recent enough for retention and compression to leave it alone."""
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    return now - dt.timedelta(hours=2)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    samples=st.dictionaries(
        keys=st.integers(min_value=0, max_value=3 * 60 - 1),  # second offsets: unique, so last() is defined
        values=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
        min_size=1,
        max_size=60,
    ),
    metric_id=st.integers(min_value=1, max_value=30),
)
def test_readings_1m_matches_the_rows_after_a_refresh(
    probe_url: str, rollup_base: dt.datetime, samples: dict[int, float], metric_id: int
) -> None:
    device_id = next(_device_ids)
    rows = [(rollup_base + dt.timedelta(seconds=s), device_id, metric_id, v) for s, v in samples.items()]
    with connect(probe_url) as conn:
        insert_readings(conn, rows)
        # Autocommit: refresh_continuous_aggregate refuses to run inside a transaction block.
        conn.execute(
            "CALL refresh_continuous_aggregate('readings_1m', %s::timestamptz, %s::timestamptz)",
            (rollup_base, rollup_base + dt.timedelta(minutes=4)),
        )
        got = conn.execute(
            "SELECT bucket, n, avg_value, min_value, max_value, last_value FROM readings_1m"
            " WHERE device_id = %s AND metric_id = %s ORDER BY bucket",
            (device_id, metric_id),
        ).fetchall()
    expected: dict[dt.datetime, list[tuple[int, float]]] = {}
    for second, value in sorted(samples.items()):
        expected.setdefault(rollup_base + dt.timedelta(minutes=second // 60), []).append((second, value))
    assert [row[0] for row in got] == sorted(expected)
    for bucket, n, avg_value, min_value, max_value, last_value in got:
        values = [v for _, v in expected[bucket]]  # type: ignore[index]
        assert n == len(values)
        assert min_value == min(values)
        assert max_value == max(values)
        assert last_value == values[-1]
        assert isinstance(avg_value, float)
        assert math.isclose(avg_value, math.fsum(values) / len(values), rel_tol=1e-9, abs_tol=1e-6)


def test_compressing_a_chunk_keeps_its_rows(probe_url: str) -> None:
    device_id = next(_device_ids)
    day = dt.datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0) - dt.timedelta(days=10)
    rows = [(day + dt.timedelta(minutes=i), device_id, 1, float(i)) for i in range(500)]
    with connect(probe_url) as conn:
        insert_readings(conn, rows)
        before = conn.execute("SELECT count(*), sum(value) FROM readings WHERE device_id = %s", (device_id,)).fetchone()
        conn.execute(f"CALL run_job({job_id(conn, 'policy_compression')})")
        compressed = conn.execute(
            "SELECT is_compressed FROM timescaledb_information.chunks"
            " WHERE hypertable_schema = %s AND hypertable_name = 'readings'"
            " AND range_start <= %s AND %s < range_end",
            (SCHEMA, day, day),
        ).fetchall()
        after = conn.execute("SELECT count(*), sum(value) FROM readings WHERE device_id = %s", (device_id,)).fetchone()
    assert compressed == [(True,)]
    assert before == (500, float(sum(range(500))))
    assert after == before


def test_retention_job_drops_old_chunks_and_keeps_new_rows(probe_url: str) -> None:
    device_id = next(_device_ids)
    now = dt.datetime.now(UTC)
    old = [(now - dt.timedelta(days=100, minutes=i), device_id, 1, 1.0) for i in range(10)]
    new = [(now - dt.timedelta(hours=1, minutes=i), device_id, 1, 2.0) for i in range(10)]
    with connect(probe_url) as conn:
        insert_readings(conn, old + new)
        assert conn.execute("SELECT count(*) FROM readings WHERE device_id = %s", (device_id,)).fetchone() == (20,)
        conn.execute(f"CALL run_job({job_id(conn, 'policy_retention')})")
        left = conn.execute("SELECT count(*), min(value) FROM readings WHERE device_id = %s", (device_id,)).fetchone()
    assert left == (10, 2.0)


def test_refresh_inside_a_transaction_is_refused(probe_url: str) -> None:
    with (
        connect(probe_url, autocommit=False) as conn,
        pytest.raises(pg_errors.ActiveSqlTransaction, match="cannot run inside a transaction block"),
    ):
        conn.execute("CALL refresh_continuous_aggregate('readings_1m', NULL, NULL)")


def test_idempotent_schema_runs_twice(fresh_timescale_url: str) -> None:
    with psycopg.connect(fresh_timescale_url) as conn:
        conn.execute(findings_sql("schema-idempotent"))
        conn.commit()
        conn.execute(findings_sql("schema-idempotent"))
        conn.commit()
        jobs = conn.execute(
            "SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_schema = 'public'"
        ).fetchone()
        caggs = conn.execute("SELECT count(*) FROM timescaledb_information.continuous_aggregates").fetchone()
    assert jobs == (3,)
    assert caggs == (1,)


# --- the engine itself: protocol behaviour the tests above and the migrations rely on -------------------------


def test_large_parameterised_insert_arrives_whole(timescale_url: str) -> None:
    """A ~200 kB Bind message spans many TCP chunks; stock pglite-socket crashed on it."""
    rows = [(i, f"row {i:06d} " + "x" * 20) for i in range(5000)]
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE big_insert (i integer, label text)")
        conn.execute(
            "INSERT INTO big_insert VALUES " + ",".join(["(%s, %s)"] * len(rows)), [x for r in rows for x in r]
        )
        got = conn.execute("SELECT count(*), sum(i), max(label) FROM big_insert").fetchone()
        conn.execute("DROP TABLE big_insert")
    assert got == (5000, sum(range(5000)), rows[-1][1])


def test_copy_from_stdin_is_refused_and_the_engine_survives(timescale_url: str) -> None:
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE copy_target (a integer)")
        with (
            pytest.raises(pg_errors.FeatureNotSupported, match="COPY FROM STDIN is not supported"),
            conn.cursor().copy("COPY copy_target FROM STDIN") as copy,
        ):
            copy.write_row((1,))
        conn.execute("INSERT INTO copy_target VALUES (1), (2)")
        got = conn.execute("SELECT count(*) FROM copy_target").fetchone()
        conn.execute("DROP TABLE copy_target")
    assert got == (2,)


def test_next_client_gets_a_clean_session(timescale_url: str) -> None:
    with psycopg.connect(timescale_url, autocommit=True) as setup:
        setup.execute("CREATE TABLE session_reset (a integer)")
    dropped = psycopg.connect(timescale_url)
    dropped.execute("INSERT INTO session_reset VALUES (1)")  # left uncommitted
    dropped.execute("SET TimeZone = 'Asia/Shanghai'")
    dropped.execute("SELECT %s::int", (1,), prepare=True)  # leaves a prepared statement _pg3_0 behind
    dropped.pgconn.finish()  # vanish without COMMIT, ROLLBACK or a clean close
    dropped.close()
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        status = conn.info.transaction_status
        rows = conn.execute("SELECT count(*) FROM session_reset").fetchone()
        prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        search_path = conn.execute("SHOW search_path").fetchone()
        timezone = conn.execute("SHOW TimeZone").fetchone()
        assert conn.execute("SELECT %s::int", (7,), prepare=True).fetchone() == (7,)
        conn.execute("DROP TABLE session_reset")
    assert status == psycopg.pq.TransactionStatus.IDLE
    assert rows == (0,)
    assert prepared == (0,)
    assert search_path == ("public",)
    assert timezone == ("GMT",)


def test_second_connection_gets_a_clear_error(fresh_timescale_url: str) -> None:
    with psycopg.connect(fresh_timescale_url) as first:
        first.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError, match="serves one connection at a time"):
            psycopg.connect(fresh_timescale_url)
    with psycopg.connect(fresh_timescale_url) as after:
        assert after.execute("SELECT 2").fetchone() == (2,)


def test_server_process_is_gone_after_the_context(tmp_path: Path) -> None:
    log_dir = tmp_path / "pglite"
    with pglite_timescale(PGLITE_PACKAGE_DIR, log_dir=log_dir) as url:
        pid = int((log_dir / PID_FILE_NAME).read_text())
        assert _alive(pid)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not _alive(pid)
    assert not (log_dir / PID_FILE_NAME).exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_missing_node_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sentinel.errors import EmbeddedServerError

    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: neither node nor npm
    with (
        pytest.raises(EmbeddedServerError, match=r"needs Node\.js >= 18 and npm on PATH: no node and npm"),
        pglite_timescale(PGLITE_PACKAGE_DIR, log_dir=tmp_path),
    ):
        pass
