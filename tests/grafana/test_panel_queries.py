"""Every SQL panel of every board, expanded as Grafana would, runs against a database filled by the scenario and
returns rows of the shape its panel type needs (must-show 1)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sentinel.hazards.stats import statistics
from tests.grafana.conftest import load_dashboards
from tests.grafana.macros import TimeRange, VariableValue, expand

# One worker runs this module under pytest-xdist, so the scenario database (module-scoped fixture) is built once.
pytestmark = pytest.mark.xdist_group("grafana-panel_queries")

DASHBOARDS = load_dashboards()
PG_UID = "sentinel-pg"
_TABLES_READ = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_.]*)", re.IGNORECASE)
_FIELD_REF = re.compile(r"\$\{__data\.fields\.(\w+)\}")


def _sql_targets() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    found = []
    for name, board in DASHBOARDS.items():
        for panel in board["panels"]:
            found += [(name, panel, t) for t in panel["targets"] if t["datasource"]["uid"] == PG_UID]
    return found


SQL_TARGETS = _sql_targets()


def _board_range(board: dict[str, Any]) -> TimeRange:
    """The board's default range, ending now (when the query runs, as in Grafana)."""
    now = datetime.now(UTC)
    start = board["time"]["from"]
    found = re.fullmatch(r"now-(\d+)([hd])", start)
    assert found is not None, board["time"]
    assert board["time"]["to"] == "now", board["time"]
    hours = int(found.group(1)) * (24 if found.group(2) == "d" else 1)
    return TimeRange(now - timedelta(hours=hours), now)


def _run(conn: psycopg.Connection[Any], sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cur = conn.execute(sql.encode())  # bytes: no placeholder parsing, the SQL runs as Grafana sends it
    assert cur.description is not None
    return [c.name for c in cur.description], [tuple(r) for r in cur.fetchall()]


def _variables(conn: psycopg.Connection[Any], board: dict[str, Any], window: TimeRange) -> dict[str, VariableValue]:
    """Each variable's values from its own query, in order (later ones may use earlier ones), as on first load:
    multi-valued ones on All, single-valued ones on their first value."""
    values: dict[str, VariableValue] = {}
    for var in board["templating"]["list"]:
        assert var["type"] == "query", var
        columns, rows = _run(conn, expand(var["query"], values, window))
        assert rows, f"variable ${var['name']} has no values"
        at = columns.index("__value") if "__value" in columns else 0
        options = tuple(str(r[at]) for r in rows)
        multi = bool(var["multi"] or var["includeAll"])
        values[var["name"]] = VariableValue(options if multi else options[:1], multi)
    return values


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _check_shape(
    panel: dict[str, Any], target: dict[str, Any], columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    where = f"panel {panel['id']} {panel['title']!r} query {target['refId']}"
    assert rows, f"{where}: no rows from the scenario"
    assert len(set(columns)) == len(columns), f"{where}: duplicate column names {columns}"
    if target["format"] == "time_series":
        # Grafana's time_series format: a "time" column (timestamp or epoch), an optional string "metric" column
        # naming the series, every other column numeric; rows ascending in time.
        assert "time" in columns, f"{where}: no time column in {columns}"
        t = columns.index("time")
        times = [r[t] for r in rows]
        assert all(isinstance(v, datetime) or _is_number(v) for v in times), f"{where}: time values {times[:3]}"
        assert times == sorted(times), f"{where}: rows not in time order"
        for k, name in enumerate(columns):
            if name not in ("time", "metric"):
                assert all(r[k] is None or _is_number(r[k]) for r in rows), f"{where}: column {name} not numeric"
        return
    if panel["type"] == "stat":
        assert len(rows) == 1, f"{where}: a stat panel needs one row, got {len(rows)}"
        assert all(_is_number(v) for v in rows[0]), f"{where}: non-numeric stat values {rows[0]}"
    if panel["type"] == "geomap":
        for layer in panel["options"]["layers"]:
            if layer["filterData"]["options"] != target["refId"]:
                continue
            lat, lon = columns.index(layer["location"]["latitude"]), columns.index(layer["location"]["longitude"])
            assert all(-90 <= r[lat] <= 90 and -180 <= r[lon] <= 180 for r in rows), f"{where}: bad coordinates"
            style = layer["config"]["style"]
            for part in ("color", "size", "text"):
                field = style.get(part, {}).get("field")
                assert field is None or field in columns, f"{where}: layer {layer['name']} {part} field {field}"
    if panel["type"] == "barchart":
        x = panel["options"]["xField"]
        assert x in columns, f"{where}: xField {x} not in {columns}"
        assert any(all(_is_number(r[k]) for r in rows) for k in range(len(columns))), f"{where}: nothing to plot"


def _check_field_references(panel: dict[str, Any], results: dict[str, list[str]]) -> None:
    """Overrides by name and data links must name columns some query of the panel returns."""
    available = {c for columns in results.values() for c in columns}
    for override in panel["fieldConfig"]["overrides"]:
        if override["matcher"]["id"] == "byName":
            assert override["matcher"]["options"] in available, f"panel {panel['id']}: override {override['matcher']}"
    for link in panel["fieldConfig"]["defaults"].get("links", []):
        for field in _FIELD_REF.findall(link["url"]):
            assert field in available, f"panel {panel['id']}: link uses ${{__data.fields.{field}}}, not in {available}"


def test_every_sql_panel_reads_only_views() -> None:
    for name, panel, target in SQL_TARGETS:
        tables = set(_TABLES_READ.findall(target["rawSql"]))
        raw = {t for t in tables if not t.startswith("v_")}
        assert not raw, f"{name} panel {panel['id']} reads {raw}: panels read the stable v_* views only"
    for name, board in DASHBOARDS.items():
        for var in board["templating"]["list"]:
            tables = set(_TABLES_READ.findall(var["query"]))
            assert all(t.startswith("v_") for t in tables), f"{name} variable {var['name']} reads {tables}"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_query_runs_on_the_scenario(name: str, scenario_db: str) -> None:
    board = DASHBOARDS[name]
    window = _board_range(board)
    with psycopg.connect(scenario_db) as conn:
        variables = _variables(conn, board, window)
        ran = 0
        for panel in board["panels"]:
            results: dict[str, list[str]] = {}
            for target in panel["targets"]:
                if target["datasource"]["uid"] != PG_UID:
                    continue
                columns, rows = _run(conn, expand(target["rawSql"], variables, window))
                _check_shape(panel, target, columns, rows)
                results[target["refId"]] = columns
                ran += 1
            if results:
                _check_field_references(panel, results)
    assert ran == sum(1 for n, _, _ in SQL_TARGETS if n == name)


def test_the_map_colours_each_site_by_its_worst_open_alert(scenario_db: str) -> None:
    with psycopg.connect(scenario_db) as conn:
        got: dict[str, str] = dict(conn.execute("SELECT site, worst_grade FROM v_site_status").fetchall())
        want: dict[str, str] = dict(
            conn.execute(
                """SELECT s.site_id, coalesce((SELECT grade FROM alerts a
                   WHERE a.site_id = s.site_id AND state <> 'normal'
                   ORDER BY array_position(ARRAY['red', 'orange', 'yellow', 'blue'], grade) LIMIT 1), 'normal')
                   FROM sites s"""
            ).fetchall()
        )
    assert got == want
    assert set(got.values()) >= {"red", "orange", "yellow", "blue", "normal"}


def test_flood_and_chatter_panels_show_the_lifecycle_s_reports(scenario_db: str) -> None:
    board = DASHBOARDS["sentinel-alerts.json"]
    window = _board_range(board)
    panels = {p["title"].split(" ")[0]: p for p in board["panels"]}
    with psycopg.connect(scenario_db) as conn:
        variables = _variables(conn, board, window)
        _, floods = _run(conn, expand(panels["告警洪流"]["targets"][0]["rawSql"], variables, window))
        _, chatter = _run(conn, expand(panels["抖动告警"]["targets"][0]["rawSql"], variables, window))
    assert [(desk, n) for _, desk, n, _ in floods] == [("城关镇", 12)]
    assert [(rule, subject, site, n) for _, _, rule, subject, site, n, _ in chatter] == [
        ("rule.chatter", "dust-1-d1", "dust-1", 7)
    ]


def test_hazard_township_panel_agrees_with_the_register_statistics(scenario_db: str) -> None:
    """The wall and `sentinel hazards` report the same stock, increment, closed and closure rate for a period."""
    board = DASHBOARDS["sentinel-hazards.json"]
    window = _board_range(board)
    (panel,) = [p for p in board["panels"] if p["title"].startswith("乡镇")]
    with psycopg.connect(scenario_db) as conn:
        variables = _variables(conn, board, window)
        _, rows = _run(conn, expand(panel["targets"][0]["rawSql"], variables, window))
        want = statistics(conn, window.start, window.end, by="township")
    got = [
        {"township": t, "stock_start": s0, "increment": inc, "closed": c, "stock_end": s1, "closure_rate": r}
        for t, s0, inc, c, s1, _, r in rows
    ]
    for row in got:
        row["closure_rate"] = None if row["closure_rate"] is None else float(row["closure_rate"])
    assert got == want
    assert any(r["closed"] for r in want)
    assert any(r["increment"] for r in want)


def _readme_grant() -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    found = re.search(r"GRANT SELECT ON (.+?) TO grafana_reader;", readme, re.DOTALL)
    assert found is not None, "README's Grafana section lost its GRANT for the read-only role"
    return found.group(1)


def test_the_readme_s_read_only_role_can_run_every_panel(scenario_db: str) -> None:
    role = f"grafana_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(scenario_db, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role}".encode())
        try:
            conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}".encode())
            conn.execute(f"GRANT SELECT ON {_readme_grant()} TO {role}".encode())
            conn.execute(f"SET ROLE {role}".encode())
            for board in DASHBOARDS.values():
                window = _board_range(board)
                variables = _variables(conn, board, window)
                for _, panel, target in SQL_TARGETS:
                    if panel in board["panels"]:
                        _run(conn, expand(target["rawSql"], variables, window))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(b"SELECT count(*) FROM alerts")
        finally:
            conn.execute(b"RESET ROLE")
            conn.execute(f"DROP OWNED BY {role}".encode())
            conn.execute(f"DROP ROLE {role}".encode())
