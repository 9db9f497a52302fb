-- The chatter check (alerts.watch) runs in every engine batch's alert transaction: for each alert the batch touched
-- it counts the engine events of the same (rule, subject) within the last minute, across all of that pair's alerts,
-- since a non-latching rule opens a new alert per raise. Without these indexes it read every alert of the table
-- (only open alerts were indexed by rule and subject) and every event of each of the pair's alerts, so a batch's
-- cost grew with the whole alert history (bench/alert_watch.py measures it).
-- depends: 0018_device_heard

CREATE INDEX alerts_rule_subject_idx ON alerts (rule_id, subject);
CREATE INDEX alert_events_engine_ts_idx ON alert_events (alert_id, device_ts) WHERE transition_key IS NOT NULL;
