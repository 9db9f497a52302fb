-- Stable views over the raw tables: what Grafana panels, the API and the tests read. Change tables freely; keep these.
-- depends: 0002_readings

CREATE VIEW v_readings AS
SELECT r.ts, d.site_id AS site, d.device, m.metric, r.value
FROM readings r
JOIN devices d ON d.device_id = r.device_id
JOIN metrics m ON m.metric_id = r.metric_id;

CREATE VIEW v_readings_1m AS
SELECT a.bucket, d.site_id AS site, d.device, m.metric, a.n, a.avg_value, a.min_value, a.max_value
FROM readings_1m a
JOIN devices d ON d.device_id = a.device_id
JOIN metrics m ON m.metric_id = a.metric_id;

CREATE VIEW v_devices AS
SELECT d.device, d.device_class, d.site_id AS site, s.name AS site_name, s.township, s.sector, s.lat, s.lon,
       d.expected_interval_s, d.in_service, d.maintenance
FROM devices d
JOIN sites s ON s.site_id = d.site_id;

CREATE VIEW v_open_alerts AS
SELECT a.alert_id, a.rule_id, d.device, a.site_id AS site, s.township, s.sector, a.kind, a.grade, a.state,
       a.raised_at, a.acked_at, a.last_value
FROM alerts a
JOIN devices d ON d.device_id = a.device_id
JOIN sites s ON s.site_id = a.site_id
WHERE a.state <> 'normal';

CREATE VIEW v_dead_letters AS
SELECT dead_letter_id, received_at, source, reason, path, octet_length(raw) AS raw_bytes
FROM dead_letters;
