-- Commit order for the engine stage: every ingest transaction that writes message_log rows stamps them with one
-- value of ingest_commit_seq. Ingest writes are serialised (one writer; the spool replayer writes only while the
-- writer spools), so the values follow commit order, which received_at (wall clock at the collector) does not: an
-- HTTP batch may commit before an MQTT batch received earlier. The stage's checkpoint keeps the newest value it
-- evaluated, and a restart catches up on every row stamped after it. Rows from before this migration have none
-- and are caught up by received_at, as before.
-- depends: 0011_partition_constraints

CREATE SEQUENCE ingest_commit_seq;
ALTER TABLE message_log ADD COLUMN commit_seq bigint;
CREATE INDEX message_log_commit_seq_brin ON message_log USING brin (commit_seq);
ALTER TABLE engine_checkpoint ADD COLUMN position_seq bigint;
