"""The macro expansion the panel tests rely on matches Grafana's documented PostgreSQL expansions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.grafana.macros import MacroError, TimeRange, VariableValue, expand, interval_seconds

RANGE = TimeRange(datetime(2026, 11, 28, 8, 0, tzinfo=UTC), datetime(2026, 11, 28, 9, 30, 15, 250000, tzinfo=UTC))


def test_time_macros_expand_as_grafana_documents() -> None:
    sql = "SELECT $__timeGroupAlias(bucket, '5m'), $__timeFrom(), $__timeTo() FROM t WHERE $__timeFilter(bucket)"
    assert expand(sql, {}, RANGE) == (
        "SELECT floor(extract(epoch from bucket)/300)*300 AS \"time\", '2026-11-28T08:00:00.000000Z',"
        " '2026-11-28T09:30:15.250000Z' FROM t WHERE bucket BETWEEN '2026-11-28T08:00:00.000000Z'"
        " AND '2026-11-28T09:30:15.250000Z'"
    )


def test_nested_arguments_and_variables() -> None:
    variables = {"town": VariableValue(("a", "o'b"), multi=True), "site": VariableValue(("s1",), multi=False)}
    sql = "SELECT $__timeGroup(coalesce(x, y), '1h') FROM t WHERE town IN ($town) AND site = '${site}'"
    assert expand(sql, variables, RANGE) == (
        "SELECT floor(extract(epoch from coalesce(x, y))/3600)*3600 FROM t WHERE town IN ('a','o''b') AND site = 's1'"
    )


@pytest.mark.parametrize(
    "sql", ["SELECT $__interval", "SELECT $nope", "SELECT $__unknown(x)", "SELECT $__timeGroup(x)", "$__timeFilter(x"]
)
def test_what_grafana_could_not_resolve_is_an_error(sql: str) -> None:
    with pytest.raises(MacroError):
        expand(sql, {}, RANGE)


@given(st.integers(1, 999), st.sampled_from("smhd"))
def test_interval_seconds(n: int, unit: str) -> None:
    assert interval_seconds(f"'{n}{unit}'") == n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
