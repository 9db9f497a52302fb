-- Which devices have ever been heard from (issue 15): one row per device, written by the ingest writer the first
-- time a message of the device is stored. The console's "never heard from" is a device without a row, whatever its
-- age; message_log cannot answer that (retention empties it, and it has no index by device). No foreign key: a
-- device removed meanwhile must never make an ingest batch fail.
-- depends: 0017_shelve_until

CREATE TABLE device_heard (
    device_id      integer PRIMARY KEY,
    first_heard_at timestamptz NOT NULL
);

INSERT INTO device_heard (device_id, first_heard_at)
SELECT device_id, min(received_at) FROM message_log GROUP BY device_id;
