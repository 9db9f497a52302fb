-- One name per concept (issue 14): the columns 0.1 called "kind" take the names the code and the API use — an
-- alert's class (alarm, warning, comm), a chatter/flood report's type, and the MQTT topic type a device event came
-- on (event, status). A rule's type alone keeps "kind". A rename keeps every row, index, constraint and default
-- (they follow the column, not its name), so nothing is copied; the CHECK constraints are renamed too so an error
-- names the column it guards. None of these tables is a TimescaleDB hypertable, and plain ALTER TABLE suffices on
-- both dialects.
-- depends: 0018_device_heard

ALTER TABLE alerts RENAME COLUMN kind TO alert_class;
ALTER TABLE alerts RENAME CONSTRAINT alerts_kind_check TO alerts_alert_class_check;
ALTER TABLE alert_reports RENAME COLUMN kind TO report_type;
ALTER TABLE alert_reports RENAME CONSTRAINT alert_reports_kind_check TO alert_reports_report_type_check;
ALTER TABLE device_events RENAME COLUMN kind TO topic_type;
ALTER TABLE device_events RENAME CONSTRAINT device_events_kind_check TO device_events_topic_type_check;

-- Views keep the output name a column had when they were made, whatever it is renamed to since: rename theirs too.
-- Their definitions already follow the renamed table columns (a view refers to a column by position), so
-- v_device_status, which only filters on the topic type, needs nothing. The Grafana boards (grafana/) read the new
-- names; a SQL user of 0.1 reading "kind" from these views must read the new name (README, "Names").
ALTER VIEW v_open_alerts RENAME COLUMN kind TO alert_class;
ALTER VIEW v_alert_wall RENAME COLUMN kind TO alert_class;
ALTER VIEW v_alert_reports RENAME COLUMN kind TO report_type;
ALTER VIEW v_device_events RENAME COLUMN kind TO topic_type;
