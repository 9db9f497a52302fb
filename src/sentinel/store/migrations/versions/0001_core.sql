-- Core tables: who sends (sites, gateways, devices, keys), what goes wrong (dead letters), what officers work with
-- (alerts, hazards: every state change is an appended event row), and what leaves (the notification outbox).
-- depends:

CREATE TABLE sentinel_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE sites (
    site_id    text PRIMARY KEY,
    name       text NOT NULL,
    township   text NOT NULL,
    sector     text NOT NULL CHECK (sector IN ('gas', 'dust', 'casting', 'charging')),
    lat        double precision CHECK (lat BETWEEN -90 AND 90),
    lon        double precision CHECK (lon BETWEEN -180 AND 180),
    attrs      jsonb NOT NULL DEFAULT '{}'::jsonb,
    operating  boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gateways (
    gateway_id  text PRIMARY KEY,
    secret_hash text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gateway_sites (
    gateway_id text NOT NULL REFERENCES gateways ON DELETE CASCADE,
    site_id    text NOT NULL REFERENCES sites ON DELETE CASCADE,
    PRIMARY KEY (gateway_id, site_id)
);

-- device_id is a compact surrogate used by the narrow readings table; device is the id devices send.
CREATE TABLE devices (
    device_id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device              text NOT NULL UNIQUE,
    site_id             text NOT NULL REFERENCES sites,
    device_class        text NOT NULL,
    expected_interval_s double precision NOT NULL DEFAULT 60 CHECK (expected_interval_s > 0),
    attrs               jsonb NOT NULL DEFAULT '{}'::jsonb,
    secret_hash         text,
    in_service          boolean NOT NULL DEFAULT true,
    maintenance         boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_site_idx ON devices (site_id);

CREATE TABLE metrics (
    metric_id smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    metric    text NOT NULL UNIQUE,
    unit      text NOT NULL DEFAULT ''
);

CREATE TABLE api_keys (
    key_id     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    role       text NOT NULL CHECK (role IN ('gateway', 'officer', 'supervisor', 'admin')),
    key_hash   text NOT NULL UNIQUE,
    gateway_id text REFERENCES gateways ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CHECK (role <> 'gateway' OR gateway_id IS NOT NULL)
);

-- Bad input is data: the raw bytes, where they came from and a reason a human can act on.
CREATE TABLE dead_letters (
    dead_letter_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at    timestamptz NOT NULL,
    source         text NOT NULL,
    reason         text NOT NULL,
    path           text NOT NULL DEFAULT '',
    raw            bytea NOT NULL
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at);

CREATE TABLE alerts (
    alert_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_key     text NOT NULL UNIQUE,
    rule_id       text NOT NULL,
    device_id     integer NOT NULL REFERENCES devices,
    site_id       text NOT NULL REFERENCES sites,
    kind          text NOT NULL DEFAULT 'alarm' CHECK (kind IN ('alarm', 'warning', 'comm')),
    grade         text NOT NULL CHECK (grade IN ('red', 'orange', 'yellow', 'blue')),
    state         text NOT NULL CHECK (state IN ('active_unack', 'active_ack', 'cleared_unack', 'normal',
                                                 'shelved', 'suppressed', 'out_of_service')),
    raised_at     timestamptz NOT NULL,
    cleared_at    timestamptz,
    acked_at      timestamptz,
    acked_by      text,
    shelved_until timestamptz,
    last_value    double precision,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- One open alert per (rule, device).
CREATE UNIQUE INDEX alerts_one_open_idx ON alerts (rule_id, device_id) WHERE state <> 'normal';
CREATE INDEX alerts_site_idx ON alerts (site_id, state);

CREATE TABLE alert_events (
    event_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id   bigint NOT NULL REFERENCES alerts,
    at         timestamptz NOT NULL DEFAULT now(),
    device_ts  timestamptz,
    actor      text NOT NULL,
    from_state text,
    to_state   text NOT NULL,
    from_grade text,
    to_grade   text,
    reason     text NOT NULL DEFAULT ''
);
CREATE INDEX alert_events_alert_idx ON alert_events (alert_id, event_id);

CREATE TABLE hazards (
    hazard_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title                  text NOT NULL,
    description            text NOT NULL DEFAULT '',
    site_id                text REFERENCES sites,
    sector                 text NOT NULL CHECK (sector IN ('gas', 'dust', 'casting', 'charging', 'other')),
    township               text NOT NULL,
    source                 text NOT NULL CHECK (source IN ('alert', 'self_inspection', 'supervisory_inspection',
                                                           'public_report', 'insurer_inspection')),
    alert_id               bigint REFERENCES alerts,
    level                  text CHECK (level IN ('major', 'general')),
    state                  text NOT NULL,
    deadline               date,
    responsible_unit       text,
    supervising_department text,
    supervision_level      smallint NOT NULL DEFAULT 0,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    closed_at              timestamptz
);
CREATE INDEX hazards_state_idx ON hazards (state, deadline);

CREATE TABLE hazard_events (
    event_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hazard_id  bigint NOT NULL REFERENCES hazards,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    from_state text,
    to_state   text NOT NULL,
    reason     text NOT NULL DEFAULT '',
    evidence   jsonb NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX hazard_events_hazard_idx ON hazard_events (hazard_id, event_id);

-- Notifications leave through an outbox written in the same transaction as the change they announce.
CREATE TABLE outbox (
    outbox_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key      text NOT NULL UNIQUE,
    kind            text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text
);
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- Messages accepted from devices, one row per (device, seq): rebuilds the duplicate filter after a restart.
CREATE TABLE message_log (
    device_id   integer NOT NULL,
    seq         bigint NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX message_log_received_brin ON message_log USING brin (received_at);
