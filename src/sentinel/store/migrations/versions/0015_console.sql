-- The duty officer's console (sentinel.console): sign-in sessions kept server-side so signing out or revoking the
-- API key ends them; the hazard register's evidence files (photos, PDFs) stored durably beside the items; who put a
-- device in or out of maintenance and why; and an index for the alert board's order (worst grade, then oldest).
-- depends: 0012_commit_order

-- A session is found by the SHA-256 of its cookie token (the token itself is never stored). It ends when signed
-- out (ended_at), when it expires, or when its API key is revoked (the lookup joins api_keys.revoked_at).
CREATE TABLE console_sessions (
    session_hash text PRIMARY KEY,
    key_id       integer NOT NULL REFERENCES api_keys ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz
);
CREATE INDEX console_sessions_key_idx ON console_sessions (key_id);

CREATE TABLE hazard_evidence (
    evidence_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hazard_id    bigint NOT NULL REFERENCES hazards,
    filename     text NOT NULL,
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/gif', 'image/webp',
                                                        'application/pdf')),
    size_bytes   integer NOT NULL CHECK (size_bytes > 0),
    sha256       text NOT NULL,
    data         bytea NOT NULL,
    uploaded_by  text NOT NULL,
    uploaded_at  timestamptz NOT NULL
);
CREATE INDEX hazard_evidence_hazard_idx ON hazard_evidence (hazard_id, evidence_id);

CREATE TABLE device_maintenance_log (
    entry_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   integer NOT NULL REFERENCES devices,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    maintenance boolean NOT NULL,
    reason      text NOT NULL
);
CREATE INDEX device_maintenance_log_device_idx ON device_maintenance_log (device_id, entry_id);

CREATE INDEX alerts_board_idx ON alerts (sentinel_grade_level(grade) DESC, raised_at) WHERE state <> 'normal';
