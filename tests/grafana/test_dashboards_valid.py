"""The boards are valid Grafana dashboards and the provisioning loads them (must-show 2): schema version, unique
ids, panels inside the 24-column grid without overlaps, datasource references that resolve to the provisioned uids,
links to boards that exist, and files that are exactly what grafana/build_dashboards.py writes."""

from __future__ import annotations

import importlib.util
import re
from typing import Any

from tests.grafana.conftest import DASHBOARDS, GRAFANA, load_dashboards, load_provisioning

BOARDS = load_dashboards()
# Panel types of Grafana's core that the boards use; a typo would render as "panel plugin not found".
CORE_PANELS = {"geomap", "stat", "table", "timeseries", "barchart"}
MIN_SCHEMA_VERSION = 36  # Grafana 9.x and later; geomap layers and the datasource-object references need it


def _provisioned() -> dict[str, str]:
    sources = load_provisioning("datasources")
    assert sources["apiVersion"] == 1
    return {d["uid"]: d["type"] for d in sources["datasources"]}


def _datasource_refs(board: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    refs = [(f"variable {v['name']}", v["datasource"]) for v in board["templating"]["list"]]
    for panel in board["panels"]:
        refs.append((f"panel {panel['id']}", panel["datasource"]))
        refs += [(f"panel {panel['id']} target {t['refId']}", t["datasource"]) for t in panel["targets"]]
    return refs


def test_there_is_a_board_for_each_wall_display() -> None:
    uids = {b["uid"] for b in BOARDS.values()}
    sectors = {f"sentinel-sector-{s}" for s in ("gas", "dust", "casting", "charging")}
    assert uids >= {"sentinel-lifeline", "sentinel-site", "sentinel-alerts", "sentinel-hazards", "sentinel-health"}
    assert uids >= sectors
    assert len(uids) == len(BOARDS), "dashboard uids must be unique"
    for path in DASHBOARDS:
        assert path.stem == BOARDS[path.name]["uid"], f"{path.name}: file name and uid differ"


def test_boards_have_schema_version_titles_and_unique_panel_ids() -> None:
    for name, board in BOARDS.items():
        assert isinstance(board["schemaVersion"], int), name
        assert board["schemaVersion"] >= MIN_SCHEMA_VERSION, name
        assert re.search(r"[\u4e00-\u9fff]", board["title"]), f"{name}: title needs Chinese"
        assert board.get("id") is None, f"{name}: a provisioned board must not carry a database id"
        ids = [p["id"] for p in board["panels"]]
        assert all(isinstance(i, int) for i in ids), name
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids {ids}"
        names = [v["name"] for v in board["templating"]["list"]]
        assert len(names) == len(set(names)), f"{name}: duplicate variables {names}"
        for panel in board["panels"]:
            assert panel["type"] in CORE_PANELS, f"{name} panel {panel['id']}: unknown type {panel['type']}"
            assert panel["title"], f"{name} panel {panel['id']}"
            assert panel["targets"], f"{name} panel {panel['id']}"
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), f"{name} panel {panel['id']}: duplicate refIds {refs}"


def test_panels_sit_inside_the_grid_without_overlapping() -> None:
    for name, board in BOARDS.items():
        cells: dict[tuple[int, int], int] = {}
        for panel in board["panels"]:
            g = panel["gridPos"]
            assert min(g["w"], g["h"]) > 0, f"{name} panel {panel['id']}"
            assert min(g["x"], g["y"]) >= 0, f"{name} panel {panel['id']}"
            assert g["x"] + g["w"] <= 24, f"{name} panel {panel['id']} is wider than the grid"
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    other = cells.setdefault((x, y), panel["id"])
                    assert other == panel["id"], f"{name}: panels {other} and {panel['id']} overlap at {(x, y)}"


def test_datasource_references_resolve_to_provisioned_uids() -> None:
    provisioned = _provisioned()
    assert provisioned == {"sentinel-pg": "grafana-postgresql-datasource", "sentinel-prom": "prometheus"}
    for name, board in BOARDS.items():
        for where, ref in _datasource_refs(board):
            assert ref["uid"] in provisioned, f"{name} {where}: datasource uid {ref['uid']!r} is not provisioned"
            assert ref["type"] == provisioned[ref["uid"]], f"{name} {where}: type {ref['type']} != provisioned"
        for panel in board["panels"]:
            for target in panel["targets"]:
                key = "rawSql" if target["datasource"]["uid"] == "sentinel-pg" else "expr"
                assert target.get(key), f"{name} panel {panel['id']}: target {target['refId']} has no {key}"


def test_links_and_map_layers_point_at_what_exists() -> None:
    uids = {b["uid"] for b in BOARDS.values()}
    for name, board in BOARDS.items():
        for panel in board["panels"]:
            for link in panel["fieldConfig"]["defaults"].get("links", []):
                target = re.match(r"/d/([\w-]+)/", link["url"])
                assert target is not None, f"{name} panel {panel['id']}: {link['url']}"
                assert target.group(1) in uids, f"{name} panel {panel['id']}: {link['url']}"
                variables = {
                    v["name"] for b in BOARDS.values() if b["uid"] == target.group(1) for v in b["templating"]["list"]
                }
                for var in re.findall(r"var-(\w+)=", link["url"]):
                    assert var in variables, f"{name} panel {panel['id']}: link sets ${var}, not a variable there"
            if panel["type"] == "geomap":
                refs = {t["refId"] for t in panel["targets"]}
                for layer in panel["options"]["layers"]:
                    assert layer["filterData"]["options"] in refs, f"{name} layer {layer['name']}"
    lifeline = BOARDS["sentinel-lifeline.json"]
    geomaps = [p for p in lifeline["panels"] if p["type"] == "geomap"]
    assert len(geomaps) == 1
    assert geomaps[0]["fieldConfig"]["defaults"]["links"], "the map needs a click-through"


def test_dashboard_provider_loads_the_dashboards_folder() -> None:
    providers = load_provisioning("dashboards")
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "${SENTINEL_GRAFANA_DASHBOARDS}"


def test_dashboard_files_are_what_the_builder_writes() -> None:
    spec = importlib.util.spec_from_file_location("build_dashboards", GRAFANA / "build_dashboards.py")
    assert spec is not None
    assert spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    built = {f"{b.uid}.json": builder.render(b) for b in builder.boards()}
    assert set(built) == {p.name for p in DASHBOARDS}
    for path in DASHBOARDS:
        assert path.read_text(encoding="utf-8") == built[path.name], f"{path.name}: run grafana/build_dashboards.py"
