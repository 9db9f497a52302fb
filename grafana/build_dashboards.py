# ruff: noqa: E501  (panel SQL reads best as one statement per line; sql() collapses whitespace anyway)
"""Writes grafana/dashboards/*.json: the wall displays, built from one set of helpers so every board is alike.

    python grafana/build_dashboards.py

The JSON files are what Grafana provisions and what tests/grafana checks (and the tests check that the files are
this script's output, so edit here, run it, commit both). SQL panels read only the stable views of migrations 0003
and 0010; Prometheus panels read the metrics of src/sentinel/metrics.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
PG = {"type": "grafana-postgresql-datasource", "uid": "sentinel-pg"}
PROM = {"type": "prometheus", "uid": "sentinel-prom"}
SCHEMA_VERSION = 39
TAGS = ["sentinel"]

Json = dict[str, Any]

# Grade level (v_site_status.worst_grade_level, v_alert_wall.grade_level) -> colour: 0 normal .. 4 red.
GRADE_STEPS = [
    {"color": "green", "value": None},
    {"color": "blue", "value": 1},
    {"color": "yellow", "value": 2},
    {"color": "orange", "value": 3},
    {"color": "red", "value": 4},
]
GRADE_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "正常 normal", "color": "green"},
            "1": {"text": "四级 蓝 blue", "color": "blue"},
            "2": {"text": "三级 黄 yellow", "color": "yellow"},
            "3": {"text": "二级 橙 orange", "color": "orange"},
            "4": {"text": "一级 红 red", "color": "red"},
        },
    }
]
SECTORS = {
    "gas": "城镇燃气 Town gas & city lifeline",
    "dust": "粉尘涉爆 Dust-explosion hazard",
    "casting": "铝深井铸造 Aluminium deep-well casting",
    "charging": "电动自行车集中充电 E-bike charging",
}
SITE_LINK = {
    "title": "站点详情 Site detail",
    "url": "/d/sentinel-site/sentinel-site?var-site=${__data.fields.site}&${__url_time_range}",
}


def sql(raw: str, fmt: str = "table", ref: str = "A") -> Json:
    return {
        "refId": ref,
        "datasource": PG,
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": " ".join(raw.split()),
    }


def prom(expr: str, legend: str, ref: str = "A") -> Json:
    return {"refId": ref, "datasource": PROM, "editorMode": "code", "expr": expr, "legendFormat": legend}


class Board:
    """Panels are laid out left to right in rows of 24 grid units; ids are assigned in order, so unique."""

    def __init__(self, uid: str, title: str, description: str) -> None:
        self.uid, self.title, self.description = uid, title, description
        self.panels: list[Json] = []
        self.variables: list[Json] = []
        self._x = self._y = self._row_h = 0

    def panel(
        self, kind: str, title: str, targets: list[Json], w: int, h: int, *, unit: str = "", **extra: Any
    ) -> Json:
        if self._x + w > 24:
            self._x, self._y, self._row_h = 0, self._y + self._row_h, 0
        defaults: Json = {"unit": unit} if unit else {}
        panel: Json = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "gridPos": {"x": self._x, "y": self._y, "w": w, "h": h},
            "datasource": targets[0]["datasource"],
            "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {},
        }
        for key, value in extra.items():
            if key == "defaults":
                panel["fieldConfig"]["defaults"].update(value)
            else:
                panel[key] = value
        self._x += w
        self._row_h = max(self._row_h, h)
        self.panels.append(panel)
        return panel

    def variable(self, name: str, label: str, query: str, *, multi: bool = True) -> None:
        """A query variable over the SQL datasource; multi-valued ones include All (panels use ``IN ($name)``),
        single-valued ones are quoted in the SQL (``'$name'``), as Grafana interpolates them raw."""
        self.variables.append(
            {
                "type": "query",
                "name": name,
                "label": label,
                "datasource": PG,
                "query": " ".join(query.split()),
                "definition": " ".join(query.split()),
                "refresh": 1,
                "multi": multi,
                "includeAll": multi,
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {},
                "sort": 1,
            }
        )

    def json(self, time_from: str = "now-6h", refresh: str = "30s") -> Json:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": TAGS,
            "timezone": "Asia/Shanghai",
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "editable": True,
            "graphTooltip": 1,
            "refresh": refresh,
            "time": {"from": time_from, "to": "now"},
            "templating": {"list": self.variables},
            "annotations": {"list": []},
            "links": [
                {"type": "dashboards", "tags": TAGS, "asDropdown": True, "title": "Sentinel", "includeVars": False}
            ],
            "panels": self.panels,
        }


def grade_stat(board: Board, title: str, source: str, where: str, grade_col: str, w: int = 12) -> None:
    """Counts per grade as one row of four columns (red first), each coloured by its grade."""
    columns = ", ".join(
        f"count(*) FILTER (WHERE {grade_col} = '{g}') AS \"{label}\""
        for g, label in (("red", "一级 红"), ("orange", "二级 橙"), ("yellow", "三级 黄"), ("blue", "四级 蓝"))
    )
    overrides = [
        {
            "matcher": {"id": "byName", "options": label},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}],
        }
        for label, color in (("一级 红", "red"), ("二级 橙", "orange"), ("三级 黄", "yellow"), ("四级 蓝", "blue"))
    ]
    panel = board.panel(
        "stat",
        title,
        [sql(f"SELECT {columns} FROM {source} WHERE {where}")],
        w,
        4,
        options={"colorMode": "background", "graphMode": "none", "reduceOptions": {"calcs": ["lastNotNull"]}},
    )
    panel["fieldConfig"]["overrides"] = overrides


def lifeline_map() -> Board:
    b = Board(
        "sentinel-lifeline", "城市生命线 风险一张图 City-lifeline map", "Every site, coloured by its worst open alert"
    )
    b.variable("sector", "行业 Sector", "SELECT DISTINCT sector FROM v_site_status ORDER BY 1")
    b.variable("township", "乡镇 Township", "SELECT DISTINCT township FROM v_site_status ORDER BY 1")
    where = "sector IN ($sector) AND township IN ($township)"
    sites = sql(
        "SELECT site, name, township, sector, lat, lon, worst_grade_level, worst_grade, open_alerts, unacked_alerts"
        f" FROM v_site_status WHERE lat IS NOT NULL AND lon IS NOT NULL AND {where}",
        ref="A",
    )
    towns = sql(
        "SELECT township, lat, lon, sites, worst_grade_level FROM v_township_labels WHERE township IN ($township)",
        ref="B",
    )
    location = {"mode": "coords", "latitude": "lat", "longitude": "lon"}
    b.panel(
        "geomap",
        "风险一张图 Sites by worst open alert",
        [sites, towns],
        24,
        18,
        defaults={
            "color": {"mode": "thresholds"},
            "thresholds": {"mode": "absolute", "steps": GRADE_STEPS},
            "mappings": GRADE_MAPPINGS,
            "links": [SITE_LINK],
        },
        options={
            "view": {"id": "fit", "lat": 31.5, "lon": 120.3, "zoom": 11, "allLayers": True},
            "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True},
            "tooltip": {"mode": "details"},
            "basemap": {"type": "default", "name": "底图 Basemap"},
            "layers": [
                {
                    "type": "markers",
                    "name": "站点 Sites",
                    "filterData": {"id": "byRefId", "options": "A"},
                    "location": location,
                    "tooltip": True,
                    "config": {
                        "showLegend": True,
                        "style": {
                            "color": {"field": "worst_grade_level", "fixed": "green"},
                            "size": {"fixed": 8, "field": "open_alerts", "min": 6, "max": 18},
                            "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                            "text": {"mode": "field", "field": "name", "fixed": ""},
                            "textConfig": {"fontSize": 10, "offsetY": -14, "textAlign": "center"},
                            "opacity": 0.9,
                        },
                    },
                },
                {
                    "type": "markers",
                    "name": "乡镇 Townships",
                    "filterData": {"id": "byRefId", "options": "B"},
                    "location": location,
                    "tooltip": False,
                    "config": {
                        "showLegend": False,
                        "style": {
                            "color": {"fixed": "transparent"},
                            "size": {"fixed": 1},
                            "text": {"mode": "field", "field": "township", "fixed": ""},
                            "textConfig": {"fontSize": 16, "textAlign": "center", "textBaseline": "middle"},
                        },
                    },
                },
            ],
        },
    )
    grade_stat(b, "站点最高告警等级 Sites by worst grade", "v_site_status", where, "worst_grade", w=12)
    b.panel(
        "stat",
        "在线站点 Sites / 未确认告警 Unacknowledged",
        [
            sql(
                f'SELECT count(*) AS "站点 sites", sum(unacked_alerts) AS "未确认 unacked" FROM v_site_status WHERE {where}'
            )
        ],
        12,
        4,
        options={"graphMode": "none", "reduceOptions": {"calcs": ["lastNotNull"]}},
    )
    b.panel(
        "table",
        "告警站点 Sites with open alerts",
        [
            sql(
                'SELECT site, name AS "站点 name", township AS "乡镇 township", sector AS "行业 sector",'
                ' worst_grade_level AS "等级 grade", open_alerts AS "告警 open", unacked_alerts AS "未确认 unacked"'
                f" FROM v_site_status WHERE open_alerts > 0 AND {where} ORDER BY worst_grade_level DESC, open_alerts DESC"
            )
        ],
        24,
        10,
        defaults={"links": [SITE_LINK]},
    )
    return b


def colour_grade_column(panel: Json, column: str) -> None:
    """Show a grade-level column as its label on its colour."""
    panel["fieldConfig"]["overrides"].append(
        {
            "matcher": {"id": "byName", "options": column},
            "properties": [
                {"id": "mappings", "value": GRADE_MAPPINGS},
                {"id": "thresholds", "value": {"mode": "absolute", "steps": GRADE_STEPS}},
                {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            ],
        }
    )


def readings_panel(b: Board, title: str, where: str, series: str) -> None:
    b.panel(
        "timeseries",
        title,
        [
            sql(
                "SELECT $__timeGroupAlias(bucket, '1m'), " + series + " AS metric, avg(avg_value) AS value"
                f" FROM v_sector_readings_1m WHERE $__timeFilter(bucket) AND {where} GROUP BY 1, 2 ORDER BY 1",
                fmt="time_series",
            )
        ],
        24,
        9,
    )


def site_detail() -> Board:
    b = Board("sentinel-site", "站点详情 Site detail", "One site: its devices, open alerts, readings and events")
    b.variable(
        "site",
        "站点 Site",
        "SELECT site AS __value, name || ' (' || site || ')' AS __text FROM v_site_status ORDER BY site",
        multi=False,
    )
    p = b.panel(
        "table",
        "站点 Site",
        [
            sql(
                'SELECT site, name AS "名称 name", township AS "乡镇 township", sector AS "行业 sector", worst_grade_level AS "等级 grade", open_alerts AS "告警 open", devices AS "设备 devices" FROM v_site_status WHERE site = \'$site\''
            )
        ],
        24,
        4,
    )
    colour_grade_column(p, "等级 grade")
    p = b.panel(
        "table",
        "未关闭告警 Open alerts",
        [
            sql(
                'SELECT raised_at AS "发生 raised", grade_level AS "等级 grade", rule_id AS "规则 rule", device AS "设备 device", state AS "状态 state", last_value AS "值 value", unacked_age_s AS "未确认 unacked for" FROM v_alert_wall WHERE site = \'$site\' ORDER BY grade_level DESC, raised_at'
            )
        ],
        24,
        7,
    )
    colour_grade_column(p, "等级 grade")
    readings_panel(b, "读数 Readings (1 min mean)", "site = '$site'", "device || ' ' || metric")
    b.panel(
        "table",
        "设备 Devices",
        [
            sql(
                'SELECT device AS "设备 device", device_class AS "类别 class", in_service AS "在用 in service", maintenance AS "检修 maintenance", last_status AS "状态 status", last_status_at AS "状态时间 since" FROM v_device_status WHERE site = \'$site\' ORDER BY device'
            )
        ],
        12,
        8,
    )
    b.panel(
        "table",
        "设备事件 Device events",
        [
            sql(
                'SELECT ts AS "时间 time", device AS "设备 device", topic_type AS "类型 type", name AS "事件 event", value AS "值 value", state AS "状态 state" FROM v_device_events WHERE site = \'$site\' AND $__timeFilter(ts) ORDER BY ts DESC LIMIT 200'
            )
        ],
        12,
        8,
    )
    return b


def sector_board(sector: str, title: str) -> Board:
    b = Board(
        f"sentinel-sector-{sector}", f"行业看板 {title}", f"Sites, alerts, readings and devices of the {sector} sector"
    )
    b.variable(
        "township", "乡镇 Township", f"SELECT DISTINCT township FROM v_site_status WHERE sector = '{sector}' ORDER BY 1"
    )
    b.variable(
        "site",
        "站点 Site",
        f"SELECT site FROM v_site_status WHERE sector = '{sector}' AND township IN ($township) ORDER BY 1",
    )
    b.variable("metric", "指标 Metric", "SELECT metric FROM v_metrics ORDER BY 1")
    where = f"sector = '{sector}' AND township IN ($township) AND site IN ($site)"
    grade_stat(b, "未关闭告警 Open alerts by grade", "v_alert_wall", where, "grade", w=12)
    b.panel(
        "stat",
        "设备 Devices",
        [
            sql(
                f'SELECT count(*) AS "设备 devices", count(*) FILTER (WHERE maintenance) AS "检修 maintenance", count(*) FILTER (WHERE last_status = \'offline\') AS "离线 offline" FROM v_device_status WHERE {where}'
            )
        ],
        12,
        4,
        options={"graphMode": "none", "reduceOptions": {"calcs": ["lastNotNull"]}},
    )
    p = b.panel(
        "table",
        "站点 Sites",
        [
            sql(
                f'SELECT site, name AS "名称 name", township AS "乡镇 township", worst_grade_level AS "等级 grade", open_alerts AS "告警 open", unacked_alerts AS "未确认 unacked", devices AS "设备 devices" FROM v_site_status WHERE {where} ORDER BY worst_grade_level DESC, site'
            )
        ],
        12,
        9,
        defaults={"links": [SITE_LINK]},
    )
    colour_grade_column(p, "等级 grade")
    p = b.panel(
        "table",
        "未关闭告警 Open alerts",
        [
            sql(
                f'SELECT raised_at AS "发生 raised", grade_level AS "等级 grade", site, device AS "设备 device", rule_id AS "规则 rule", state AS "状态 state", unacked_age_s AS "未确认 unacked for" FROM v_alert_wall WHERE {where} ORDER BY grade_level DESC, raised_at LIMIT 200'
            )
        ],
        12,
        9,
        defaults={"links": [SITE_LINK]},
    )
    colour_grade_column(p, "等级 grade")
    readings_panel(b, "读数 Readings by site (1 min mean)", f"{where} AND metric IN ($metric)", "site || ' ' || metric")
    return b


def alert_wall() -> Board:
    b = Board(
        "sentinel-alerts",
        "值班告警墙 Duty-officer alert wall",
        "Open alerts, unacknowledged age, floods and chattering",
    )
    b.variable("sector", "行业 Sector", "SELECT DISTINCT sector FROM v_site_status ORDER BY 1")
    b.variable("township", "乡镇 Township", "SELECT DISTINCT township FROM v_site_status ORDER BY 1")
    where = "sector IN ($sector) AND township IN ($township)"
    grade_stat(b, "未关闭告警 Open alerts by grade", "v_alert_wall", where, "grade", w=12)
    b.panel(
        "stat",
        "未确认 Unacknowledged",
        [
            sql(
                f'SELECT count(unacked_age_s) AS "未确认 unacked", coalesce(max(unacked_age_s), 0) AS "最久 oldest" FROM v_alert_wall WHERE {where}'
            )
        ],
        12,
        4,
        options={"graphMode": "none", "colorMode": "value", "reduceOptions": {"calcs": ["lastNotNull"]}},
        fieldConfig={
            "defaults": {},
            "overrides": [
                {"matcher": {"id": "byName", "options": "最久 oldest"}, "properties": [{"id": "unit", "value": "s"}]}
            ],
        },
    )
    p = b.panel(
        "table",
        "未关闭告警 Open alerts (worst, then longest unacknowledged)",
        [
            sql(
                f'SELECT raised_at AS "发生 raised", grade_level AS "等级 grade", site, township AS "乡镇 township", subject AS "对象 subject", rule_id AS "规则 rule", state AS "状态 state", last_value AS "值 value", unacked_age_s AS "未确认 unacked for", acked_by AS "确认人 acked by" FROM v_alert_wall WHERE {where} ORDER BY grade_level DESC, unacked_age_s DESC NULLS LAST LIMIT 500'
            )
        ],
        24,
        10,
        defaults={"links": [SITE_LINK]},
    )
    colour_grade_column(p, "等级 grade")
    p["fieldConfig"]["overrides"].append(
        {"matcher": {"id": "byName", "options": "未确认 unacked for"}, "properties": [{"id": "unit", "value": "s"}]}
    )
    b.panel(
        "timeseries",
        "新告警 / 10 min by township (flood above 10)",
        [
            sql(
                f"SELECT $__timeGroupAlias(raised_at, '10m'), township AS metric, count(*) AS value FROM v_alert_raises WHERE $__timeFilter(raised_at) AND {where} GROUP BY 1, 2 ORDER BY 1",
                fmt="time_series",
            )
        ],
        12,
        8,
        defaults={
            "custom": {"drawStyle": "bars", "thresholdsStyle": {"mode": "line"}},
            "thresholds": {
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}, {"color": "red", "value": 10}],
            },
        },
    )
    b.panel(
        "table",
        "告警洪流 Floods (>10 new alerts in 10 min per desk)",
        [
            sql(
                'SELECT window_start AS "窗口 window", desk AS "值班台 desk", count AS "新告警 new", created_at AS "报告 reported" FROM v_alert_reports WHERE report_type = \'flood\' AND $__timeFilter(window_start) AND desk IN ($township) ORDER BY window_start DESC LIMIT 200'
            )
        ],
        12,
        8,
    )
    b.panel(
        "table",
        "抖动告警 Chattering (≥5 transitions in 1 min)",
        [
            sql(
                'SELECT window_start AS "窗口 window", alert_id, rule_id AS "规则 rule", subject AS "对象 subject", site, count AS "变化 transitions", desk AS "值班台 desk" FROM v_alert_reports WHERE report_type = \'chatter\' AND $__timeFilter(window_start) AND desk IN ($township) AND sector IN ($sector) ORDER BY window_start DESC LIMIT 200'
            )
        ],
        12,
        8,
        defaults={"links": [SITE_LINK]},
    )
    b.panel(
        "table",
        "告警变化 Recent transitions",
        [
            sql(
                f'SELECT at AS "时间 at", alert_id, device AS "设备 device", actor AS "操作 actor", from_state AS "从 from", to_state AS "到 to", to_grade AS "等级 grade", reason AS "原因 reason" FROM v_alert_transitions WHERE $__timeFilter(at) AND {where} ORDER BY at DESC LIMIT 200'
            )
        ],
        12,
        8,
    )
    return b


# Period counts over the dashboard's range [from, to), defined as in sentinel.hazards.stats.
STOCK_AT_START = (
    "count(*) FILTER (WHERE created_at < $__timeFrom() AND (closed_at IS NULL OR closed_at >= $__timeFrom()))"
)
INCREMENT = "count(*) FILTER (WHERE created_at >= $__timeFrom() AND created_at < $__timeTo())"
CLOSED = "count(*) FILTER (WHERE closed_at >= $__timeFrom() AND closed_at < $__timeTo())"


def hazard_register() -> Board:
    b = Board(
        "sentinel-hazards", "重大事故隐患台账 Hazard register", "Stock, increment, overdue and closure rate by township"
    )
    b.variable("sector", "行业 Sector", "SELECT DISTINCT sector FROM v_hazard_register ORDER BY 1")
    b.variable("township", "乡镇 Township", "SELECT DISTINCT township FROM v_hazard_register ORDER BY 1")
    where = "sector IN ($sector) AND township IN ($township)"
    b.panel(
        "stat",
        "隐患 Register",
        [
            sql(
                'SELECT count(*) FILTER (WHERE is_open) AS "存量 stock",'
                " count(*) FILTER (WHERE is_open AND level = 'major') AS \"重大 major\","
                f' {INCREMENT} AS "增量 increment",'
                ' count(*) FILTER (WHERE is_overdue) AS "逾期 overdue",'
                f' {CLOSED} AS "销号 closed"'
                f" FROM v_hazard_register WHERE {where}"
            )
        ],
        24,
        4,
        options={"graphMode": "none", "reduceOptions": {"calcs": ["lastNotNull"]}},
    )
    b.panel(
        "table",
        "乡镇 By township",
        [
            sql(
                # The period statistics of sentinel.hazards.stats over the dashboard's range [from, to).
                f'SELECT township AS "乡镇 township", {STOCK_AT_START} AS "期初存量 stock at start",'
                f' {INCREMENT} AS "增量 increment", {CLOSED} AS "销号 closed",'
                ' count(*) FILTER (WHERE closed_at IS NULL OR closed_at >= $__timeTo()) AS "存量 stock",'
                ' count(*) FILTER (WHERE is_overdue) AS "逾期 overdue",'
                f' round(({CLOSED})::numeric / nullif({STOCK_AT_START} + {INCREMENT}, 0), 4) AS "销号率 closure rate"'
                f" FROM v_hazard_register WHERE created_at < $__timeTo() AND {where} GROUP BY township ORDER BY township"
            )
        ],
        12,
        9,
        fieldConfig={
            "defaults": {},
            "overrides": [
                {
                    "matcher": {"id": "byName", "options": "销号率 closure rate"},
                    "properties": [{"id": "unit", "value": "percentunit"}],
                }
            ],
        },
    )
    b.panel(
        "barchart",
        "存量 Stock by township and sector",
        [
            sql(
                f"SELECT township, sector, stock, overdue FROM v_hazard_townships WHERE {where} ORDER BY township, sector"
            )
        ],
        12,
        9,
        options={"xField": "township", "stacking": "normal", "showValue": "auto", "legend": {"showLegend": True}},
    )
    b.panel(
        "timeseries",
        "增量 New entries per day",
        [
            sql(
                f"SELECT $__timeGroupAlias(created_at, '1d'), sector AS metric, count(*) AS value FROM v_hazard_register WHERE $__timeFilter(created_at) AND {where} GROUP BY 1, 2 ORDER BY 1",
                fmt="time_series",
            )
        ],
        12,
        8,
        defaults={"custom": {"drawStyle": "bars"}},
    )
    b.panel(
        "table",
        "逾期 Overdue (supervision escalates)",
        [
            sql(
                f'SELECT hazard_id, title AS "隐患 title", township AS "乡镇 township", sector AS "行业 sector", level AS "级别 level", state AS "状态 state", deadline AS "期限 deadline", supervision_level AS "督办 supervision", responsible_unit AS "责任单位 unit" FROM v_hazard_register WHERE is_overdue AND {where} ORDER BY deadline LIMIT 500'
            )
        ],
        12,
        8,
    )
    b.panel(
        "table",
        "未销号 Open entries",
        [
            sql(
                f'SELECT hazard_id, created_at AS "登记 recorded", title AS "隐患 title", site, township AS "乡镇 township", source AS "来源 source", level AS "级别 level", state AS "状态 state", deadline AS "期限 deadline", round(open_days::numeric, 1) AS "天数 days open" FROM v_hazard_register WHERE is_open AND {where} ORDER BY created_at DESC LIMIT 500'
            )
        ],
        24,
        9,
    )
    return b


def health() -> Board:
    b = Board(
        "sentinel-health",
        "Sentinel 运行状态 Health",
        "Ingest rates, rejects, queue depth, latencies, MQTT and engine counters",
    )
    rate = "sum by (transport) (rate(sentinel_ingest_messages_received_total[1m]))"
    b.panel(
        "timeseries",
        "接收 Messages received /s",
        [
            prom(rate, "{{transport}}"),
            prom("rate(sentinel_ingest_readings_stored_total[1m])", "readings stored", "B"),
            prom("rate(sentinel_ingest_messages_stored_total[1m])", "messages stored", "C"),
        ],
        12,
        8,
        unit="ops",
    )
    b.panel(
        "timeseries",
        "拒收 Rejects /s by reason",
        [
            prom("sum by (reason) (rate(sentinel_ingest_messages_rejected_total[5m]))", "{{reason}}"),
            prom("rate(sentinel_ingest_duplicates_total[5m])", "duplicates", "B"),
            prom("rate(sentinel_ingest_late_readings_total[5m])", "late readings", "C"),
        ],
        12,
        8,
        unit="ops",
    )
    b.panel(
        "timeseries",
        "队列 Queue depth / spool",
        [
            prom("sentinel_ingest_queue_batches", "queued batches"),
            prom("sentinel_ingest_spool_pending", "spool pending", "B"),
            prom("increase(sentinel_ingest_backpressure_total[5m])", "refused (backpressure)", "C"),
            prom("increase(sentinel_ingest_spooled_batches_total[5m])", "spooled batches", "D"),
        ],
        8,
        8,
    )
    quantiles = [
        prom(
            f"histogram_quantile({q}, sum by (le) (rate(sentinel_ingest_batch_latency_seconds_bucket[5m])))",
            f"p{int(q * 100)}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
    ]
    b.panel("timeseries", "批次延迟 Batch latency (receipt → durable)", quantiles, 8, 8, unit="s")
    db = [
        prom(
            f"histogram_quantile({q}, sum by (le) (rate(sentinel_db_write_seconds_bucket[5m])))",
            f"p{int(q * 100)}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
    ]
    b.panel("timeseries", "数据库写入 Database write latency", db, 8, 8, unit="s")
    b.panel(
        "timeseries",
        "MQTT",
        [
            prom("rate(sentinel_mqtt_messages_received_total[1m])", "received /s"),
            prom("rate(sentinel_mqtt_messages_acknowledged_total[1m])", "acknowledged /s", "B"),
            prom("increase(sentinel_mqtt_connects_total[5m])", "connects", "C"),
            prom("increase(sentinel_mqtt_sink_failures_total[5m])", "sink failures", "D"),
            prom("sentinel_mqtt_connected", "connected", "E"),
        ],
        12,
        8,
    )
    b.panel(
        "timeseries",
        "规则引擎 Engine readings /s",
        [
            prom("rate(sentinel_engine_readings_total[1m])", "evaluated"),
            prom("sum by (reason) (rate(sentinel_engine_readings_skipped_total[1m]))", "skipped {{reason}}", "B"),
            prom("rate(sentinel_engine_readings_reordered_total[1m])", "reordered", "C"),
            prom("rate(sentinel_engine_readings_late_total[1m])", "late, put back in order", "D"),
            prom("rate(sentinel_engine_readings_replayed_total[1m])", "replayed by rewinds", "E"),
        ],
        12,
        8,
        unit="ops",
    )
    b.panel(
        "timeseries",
        "死信 Dead letters by reason",
        [
            sql(
                "SELECT $__timeGroupAlias(received_at, '5m'), reason AS metric, count(*) AS value FROM v_dead_letters WHERE $__timeFilter(received_at) GROUP BY 1, 2 ORDER BY 1",
                fmt="time_series",
            )
        ],
        12,
        8,
    )
    b.panel(
        "table",
        "最近死信 Latest dead letters",
        [
            sql(
                'SELECT received_at AS "时间 at", source AS "来源 source", path AS "位置 path", reason AS "原因 reason", raw_bytes AS "字节 bytes" FROM v_dead_letters WHERE $__timeFilter(received_at) ORDER BY received_at DESC LIMIT 100'
            )
        ],
        12,
        8,
    )
    return b


def boards() -> list[Board]:
    return [
        lifeline_map(),
        site_detail(),
        *(sector_board(s, t) for s, t in SECTORS.items()),
        alert_wall(),
        hazard_register(),
        health(),
    ]


def render(board: Board) -> str:
    return json.dumps(board.json(), ensure_ascii=False, indent=2) + "\n"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for board in boards():
        (OUT / f"{board.uid}.json").write_text(render(board), encoding="utf-8")
        print(OUT / f"{board.uid}.json")


if __name__ == "__main__":
    main()
