-- +goose Up
-- A user's TOTP second factor (RFC 6238). The secret is sealed (AES-256-GCM under a versioned server
-- secret, bound to the user id), never stored in plain. A row with enabled_at NULL is a setup awaiting
-- its first code. last_step is the newest time step (Unix time / 30 s) accepted for the user: a code
-- is taken only by the UPDATE that raises it, so no step is ever accepted twice, on any instance.
CREATE TABLE totp_factors (
    user_id    uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret     bytea NOT NULL,
    last_step  bigint NOT NULL DEFAULT 0,
    enabled_at timestamptz,
    created_at timestamptz NOT NULL
);

-- One-time recovery codes of an enabled factor, as HMACs under the code secret; used once.
CREATE TABLE totp_recovery_codes (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  text NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- +goose Down
DROP TABLE totp_recovery_codes;
DROP TABLE totp_factors;
