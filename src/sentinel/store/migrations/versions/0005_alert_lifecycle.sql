-- Alert lifecycle (ISA-18.2 states), idempotent transitions, the engine checkpoint, webhooks and alert reports;
-- the hazard register's plan, verification outcome and evidence. Only additions: 0001 stays as shipped.
-- depends: 0004_device_events

-- subject: the device id, or the site id of a site-scope rule (the engine's subject); the open alert is found by it.
ALTER TABLE alerts
    ADD COLUMN subject           text,
    ADD COLUMN condition_active  boolean NOT NULL DEFAULT true,
    ADD COLUMN acked             boolean NOT NULL DEFAULT false,
    ADD COLUMN latching          boolean NOT NULL DEFAULT false,
    ADD COLUMN shelve_reason     text,
    ADD COLUMN suppressed_reason text,
    ADD COLUMN township          text,
    ADD COLUMN sector            text,
    ADD COLUMN hazard_id         bigint;
UPDATE alerts a SET subject = d.device FROM devices d WHERE a.device_id = d.device_id AND a.subject IS NULL;
CREATE UNIQUE INDEX alerts_one_open_subject_idx ON alerts (rule_id, subject) WHERE state <> 'normal';
CREATE INDEX alerts_raised_idx ON alerts (township, raised_at);

-- A transition from the engine carries a key built from (rule, subject, device time, grades, seq): applying the same
-- transition twice (restart, replay) finds the key and changes nothing.
ALTER TABLE alert_events ADD COLUMN transition_key text;
CREATE UNIQUE INDEX alert_events_transition_key_idx ON alert_events (transition_key) WHERE transition_key IS NOT NULL;

-- The engine's state as of the durable batch received at position_us (one row).
CREATE TABLE engine_checkpoint (
    id          smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    position_us bigint NOT NULL,
    devices     text NOT NULL,
    snapshot    bytea NOT NULL,
    saved_at    timestamptz NOT NULL DEFAULT now()
);

-- Where notifications go. Empty filter arrays match everything.
CREATE TABLE webhooks (
    webhook_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    url        text NOT NULL,
    secret     text NOT NULL,
    grades     text[] NOT NULL DEFAULT '{}',
    sectors    text[] NOT NULL DEFAULT '{}',
    townships  text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE outbox ADD COLUMN webhook_id integer REFERENCES webhooks ON DELETE CASCADE;

-- Chattering and flood reports.
CREATE TABLE alert_reports (
    report_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('chatter', 'flood')),
    report_key   text NOT NULL UNIQUE,
    desk         text NOT NULL,
    alert_id     bigint REFERENCES alerts,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    count        integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE hazards
    ADD COLUMN plan          jsonb,
    ADD COLUMN verification  text CHECK (verification IN ('passed', 'failed')),
    ADD COLUMN reported_by   text NOT NULL DEFAULT '';
