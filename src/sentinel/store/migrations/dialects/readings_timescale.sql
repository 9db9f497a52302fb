-- Readings on TimescaleDB: a hypertable of 1-day chunks, compressed after a few days, dropped by a retention
-- policy, with a continuous aggregate of one-minute rollups. Same columns and view names as the native dialect.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE readings (
    ts        timestamptz NOT NULL,
    device_id integer NOT NULL,
    metric_id smallint NOT NULL,
    value     double precision NOT NULL
);
SELECT create_hypertable('readings', 'ts', chunk_time_interval => interval '1 day');

ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id, metric_id',
    timescaledb.compress_orderby = 'ts'
);
SELECT add_compression_policy('readings', interval '3 days');
SELECT add_retention_policy('readings', interval '90 days');

CREATE MATERIALIZED VIEW readings_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket('1 minute', ts) AS bucket,
       device_id,
       metric_id,
       count(*)   AS n,
       avg(value) AS avg_value,
       min(value) AS min_value,
       max(value) AS max_value
FROM readings
GROUP BY 1, 2, 3
WITH NO DATA;
SELECT add_continuous_aggregate_policy('readings_1m',
    start_offset => interval '1 day', end_offset => interval '1 minute', schedule_interval => interval '1 minute');

INSERT INTO sentinel_meta (key, value) VALUES ('readings_dialect', 'timescale');
