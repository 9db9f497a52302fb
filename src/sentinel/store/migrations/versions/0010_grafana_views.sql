-- Views the Grafana wall displays read (grafana/dashboards/*.json). Panels query only these and the 0003 views, so
-- tables may change under them; a change that breaks a view must replace it with the same columns.
-- Grade levels are numbers so a panel can colour by threshold: 0 none, 1 blue, 2 yellow, 3 orange, 4 red.
-- "Open" alerts are those not back to normal (v_open_alerts); unacknowledged ones have acked false (0005: an
-- escalation asks for a new acknowledgement although acked_at keeps the old one). "Open" hazards are those not
-- closed; overdue ones are open, not yet verified and past their deadline (sentinel.hazards.states).
-- depends: 0005_alert_lifecycle

CREATE FUNCTION sentinel_grade_level(grade text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE grade WHEN 'red' THEN 4 WHEN 'orange' THEN 3 WHEN 'yellow' THEN 2 WHEN 'blue' THEN 1 ELSE 0 END
$$;

CREATE FUNCTION sentinel_grade_label(grade text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE grade WHEN 'red' THEN '一级 红 red' WHEN 'orange' THEN '二级 橙 orange'
                      WHEN 'yellow' THEN '三级 黄 yellow' WHEN 'blue' THEN '四级 蓝 blue' ELSE '正常 normal' END
$$;

-- Every site with its worst open alert: the city-lifeline map and the sector boards.
CREATE VIEW v_site_status AS
SELECT s.site_id AS site, s.name, s.township, s.sector, s.lat, s.lon, s.operating,
       coalesce(a.worst_level, 0) AS worst_grade_level,
       CASE coalesce(a.worst_level, 0) WHEN 4 THEN 'red' WHEN 3 THEN 'orange' WHEN 2 THEN 'yellow'
                                       WHEN 1 THEN 'blue' ELSE 'normal' END AS worst_grade,
       coalesce(a.open_alerts, 0) AS open_alerts,
       coalesce(a.unacked_alerts, 0) AS unacked_alerts,
       (SELECT count(*) FROM devices d WHERE d.site_id = s.site_id) AS devices
FROM sites s
LEFT JOIN (
    SELECT site_id,
           max(sentinel_grade_level(grade)) AS worst_level,
           count(*) AS open_alerts,
           count(*) FILTER (WHERE NOT acked) AS unacked_alerts
    FROM alerts
    WHERE state <> 'normal'
    GROUP BY site_id
) a ON a.site_id = s.site_id;

-- Townships as map labels: the centre of their sites that have coordinates.
CREATE VIEW v_township_labels AS
SELECT township, avg(lat) AS lat, avg(lon) AS lon, count(*) AS sites,
       max(worst_grade_level) AS worst_grade_level
FROM v_site_status
WHERE lat IS NOT NULL AND lon IS NOT NULL
GROUP BY township;

-- The duty officer's wall: open alerts with their grade as a number and label, and how long each has waited for an
-- acknowledgement (NULL once acknowledged).
CREATE VIEW v_alert_wall AS
SELECT a.alert_id, a.rule_id, coalesce(a.subject, d.device) AS subject, d.device, a.site_id AS site, s.name AS site_name, s.township, s.sector, a.kind,
       a.grade, sentinel_grade_level(a.grade) AS grade_level, sentinel_grade_label(a.grade) AS grade_label,
       a.state, a.acked, a.raised_at, a.acked_at, a.acked_by, a.shelved_until, a.last_value, a.hazard_id,
       CASE WHEN NOT a.acked THEN extract(epoch FROM now() - a.raised_at) END AS unacked_age_s
FROM alerts a
JOIN devices d ON d.device_id = a.device_id
JOIN sites s ON s.site_id = a.site_id
WHERE a.state <> 'normal';

-- Every alert ever raised (open or not), one row each: raise rates and floods (more than 10 new alerts per
-- 10 minutes per duty desk; the desk is the township).
CREATE VIEW v_alert_raises AS
SELECT a.alert_id, a.raised_at, a.rule_id, d.device, a.site_id AS site, s.township, s.sector, a.grade,
       sentinel_grade_level(a.grade) AS grade_level, a.state
FROM alerts a
JOIN devices d ON d.device_id = a.device_id
JOIN sites s ON s.site_id = a.site_id;

-- Chattering and flood reports of the alert lifecycle (sentinel.alerts.watch): a flood is reported per desk
-- (township) and 10-minute bucket, chattering per alert and bucket.
CREATE VIEW v_alert_reports AS
SELECT r.report_id, r.kind, r.desk, r.alert_id, a.rule_id, coalesce(a.subject, d.device) AS subject,
       a.site_id AS site, s.sector, a.grade, r.window_start, r.window_end, r.count, r.created_at
FROM alert_reports r
LEFT JOIN alerts a ON a.alert_id = r.alert_id
LEFT JOIN devices d ON d.device_id = a.device_id
LEFT JOIN sites s ON s.site_id = a.site_id;

-- Every state or grade change of an alert: chattering is many of these for one alert in a short window.
CREATE VIEW v_alert_transitions AS
SELECT e.event_id, e.at, e.device_ts, e.alert_id, a.rule_id, d.device, a.site_id AS site, s.township, s.sector,
       e.actor, e.from_state, e.to_state, e.from_grade, e.to_grade, e.reason
FROM alert_events e
JOIN alerts a ON a.alert_id = e.alert_id
JOIN devices d ON d.device_id = a.device_id
JOIN sites s ON s.site_id = a.site_id;

-- The hazard register, one row per entry, with whether it is open and overdue (deadline passed, Asia/Shanghai
-- calendar day) and how many days it has been open.
CREATE VIEW v_hazard_register AS
SELECT h.hazard_id, h.title, h.site_id AS site, h.sector, h.township, h.source, h.level, h.state, h.deadline,
       h.responsible_unit, h.supervising_department, h.supervision_level, h.created_at, h.closed_at,
       (h.closed_at IS NULL) AS is_open,
       h.verification,
       (h.closed_at IS NULL AND h.state NOT IN ('verified', 'closed') AND h.deadline IS NOT NULL
        AND h.deadline < (now() AT TIME ZONE 'Asia/Shanghai')::date) AS is_overdue,
       extract(epoch FROM coalesce(h.closed_at, now()) - h.created_at) / 86400.0 AS open_days
FROM hazards h;

-- Register totals by township and sector as of now: stock (open), overdue, major stock, entries ever, closed.
-- Increment and closure rate depend on the period (sentinel.hazards.stats), so panels compute them from
-- v_hazard_register with the dashboard's time range.
CREATE VIEW v_hazard_townships AS
SELECT township, sector,
       count(*) FILTER (WHERE is_open) AS stock,
       count(*) FILTER (WHERE is_overdue) AS overdue,
       count(*) FILTER (WHERE is_open AND level = 'major') AS major_stock,
       count(*) AS total,
       count(*) FILTER (WHERE NOT is_open) AS closed
FROM v_hazard_register
GROUP BY township, sector;

-- One-minute rollups with the site's sector and township, for the sector boards' variables and filters.
CREATE VIEW v_sector_readings_1m AS
SELECT r.bucket, s.sector, s.township, r.site, r.device, r.metric, r.n, r.avg_value, r.min_value, r.max_value
FROM v_readings_1m r
JOIN sites s ON s.site_id = r.site;

-- The metric catalogue, for the boards' metric pickers.
CREATE VIEW v_metrics AS
SELECT metric, unit FROM metrics;

-- Each device with its last online/offline status (NULL when it never sent one).
CREATE VIEW v_device_status AS
SELECT d.device, d.device_class, d.site_id AS site, s.name AS site_name, s.township, s.sector,
       d.in_service, d.maintenance, d.expected_interval_s, st.state AS last_status, st.ts AS last_status_at
FROM devices d
JOIN sites s ON s.site_id = d.site_id
LEFT JOIN LATERAL (
    SELECT e.state, e.ts FROM device_events e
    WHERE e.device_id = d.device_id AND e.kind = 'status'
    ORDER BY e.ts DESC
    LIMIT 1
) st ON true;
