-- Notifications to the officer on duty (issue 16): the duty roster, one row per message to send (a delivery), the
-- digests that fold several deliveries into one robot message, every attempt (the audit trail) and the escalation
-- chains that run until an alert is acknowledged. Channel settings (with their secrets) live in the channels file,
-- not here.
-- depends: 0012_commit_order

-- The roster as loaded by `sentinel duty load` (one document; the newest load wins).
CREATE TABLE duty_roster (
    id        smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    document  jsonb NOT NULL,
    source    text NOT NULL,
    loaded_at timestamptz NOT NULL
);

-- A message for one channel and recipient (a robot group, a mobile number, an address). dedupe_key makes routing
-- and every escalation step idempotent: the same event or step never creates a second delivery.
CREATE TABLE notify_deliveries (
    delivery_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key      text NOT NULL UNIQUE,
    alert_id        bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
    event           text NOT NULL,
    step            integer,
    channel         text NOT NULL,
    recipient       text NOT NULL,
    mentions        text[] NOT NULL DEFAULT '{}',
    grade           text NOT NULL,
    township        text NOT NULL DEFAULT '',
    content         jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'sent', 'digested', 'failed', 'cancelled')),
    digest_id       bigint,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    done_at         timestamptz,
    last_result     text
);
CREATE INDEX notify_deliveries_queued_idx ON notify_deliveries (channel, next_attempt_at) WHERE state = 'queued';
CREATE INDEX notify_deliveries_alert_idx ON notify_deliveries (alert_id);

-- Several queued deliveries of one channel and township sent as one message while the channel is at its limit.
CREATE TABLE notify_digests (
    digest_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel         text NOT NULL,
    township        text NOT NULL,
    count           integer NOT NULL,
    content         jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    done_at         timestamptz
);
ALTER TABLE notify_deliveries ADD FOREIGN KEY (digest_id) REFERENCES notify_digests;

-- Every attempt to send: what, to whom, when, with which result. The rate limiter counts these.
CREATE TABLE notify_attempts (
    attempt_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id bigint REFERENCES notify_deliveries ON DELETE CASCADE,
    digest_id   bigint REFERENCES notify_digests ON DELETE CASCADE,
    channel     text NOT NULL,
    recipient   text NOT NULL,
    at          timestamptz NOT NULL,
    result      text NOT NULL
                CHECK (result IN ('ok', 'rate_limited', 'config_error', 'failed', 'daily_limit', 'cancelled')),
    detail      text NOT NULL DEFAULT ''
);
CREATE INDEX notify_attempts_channel_at_idx ON notify_attempts (channel, at);
CREATE INDEX notify_attempts_recipient_at_idx ON notify_attempts (channel, recipient, at);

-- One escalation chain per alert: the next step and when it is due. A step is raised at most once: its row in
-- notify_escalation_steps is written in the same transaction as its deliveries. Step numbers run on across
-- restarts of the chain (an acknowledged alert that escalates again): the chain's own step index is step - base.
CREATE TABLE notify_escalations (
    alert_id    bigint PRIMARY KEY REFERENCES alerts ON DELETE CASCADE,
    grade       text NOT NULL,
    started_at  timestamptz NOT NULL,
    base        integer NOT NULL DEFAULT 0,
    next_step   integer NOT NULL DEFAULT 0,
    next_due_at timestamptz NOT NULL,
    stopped_at  timestamptz,
    stop_reason text
);
CREATE INDEX notify_escalations_due_idx ON notify_escalations (next_due_at) WHERE stopped_at IS NULL;
CREATE TABLE notify_escalation_steps (
    alert_id bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
    step     integer NOT NULL,
    kind     text NOT NULL CHECK (kind IN ('step', 'reminder')),
    audience text NOT NULL,
    at       timestamptz NOT NULL,
    PRIMARY KEY (alert_id, step)
);
