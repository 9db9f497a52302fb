-- Input limits (issue 13).
-- Dead letters keep a prefix of what was refused, plus its full size and SHA-256, and the reject code so they can
-- be counted by kind in SQL. Rows from before keep their whole bytes; their size and hash are filled in here.
-- Device events and statuses are idempotent by key: a retained status is redelivered on every re-subscription and
-- must be stored once. Copies stored before this migration are removed (the first row of each key is kept).
-- depends: 0012_commit_order

ALTER TABLE dead_letters
    ADD COLUMN code   text NOT NULL DEFAULT '',
    ADD COLUMN size   bigint,
    ADD COLUMN sha256 bytea;
UPDATE dead_letters SET size = length(raw), sha256 = sha256(raw) WHERE size IS NULL;
CREATE INDEX dead_letters_source_idx ON dead_letters (source, received_at);

DELETE FROM device_events a
USING device_events b
WHERE a.device_id = b.device_id AND a.ts = b.ts AND a.kind = b.kind AND a.name = b.name
  AND (a.received_at, a.ctid) > (b.received_at, b.ctid);
CREATE UNIQUE INDEX device_events_key ON device_events (device_id, ts, kind, name);
