-- Discrete events (spark, valve state, interlock trip) and online/offline statuses, kept as sent; and the progress
-- of replaying the local spool, written in the same transaction as the replayed rows so a replay is exactly-once.
-- depends: 0003_views

CREATE TABLE device_events (
    ts          timestamptz NOT NULL,
    device_id   integer NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('event', 'status')),
    name        text NOT NULL,
    value       double precision,
    state       text,
    note        text,
    received_at timestamptz NOT NULL
);
CREATE INDEX device_events_device_ts_idx ON device_events (device_id, ts);

CREATE TABLE spool_progress (
    segment    text PRIMARY KEY,
    applied_to bigint NOT NULL
);

CREATE VIEW v_device_events AS
SELECT e.ts, d.device, d.site_id AS site, e.kind, e.name, e.value, e.state, e.note
FROM device_events e
JOIN devices d ON d.device_id = e.device_id;
