-- +goose Up
CREATE TABLE sessions (
    id              text PRIMARY KEY,
    user_id         text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id       text NOT NULL REFERENCES tenants (id),
    amr             text NOT NULL,
    ip              text NOT NULL DEFAULT '',
    user_agent      text NOT NULL DEFAULT '',
    created_at      datetime NOT NULL,
    last_used_at    datetime NOT NULL,
    idle_expires_at datetime NOT NULL,
    expires_at      datetime NOT NULL,
    revoked_at      datetime,
    revoke_reason   text
);

CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

-- A session's refresh tokens form a chain; only SHA-256 hashes are stored.
CREATE TABLE refresh_tokens (
    id         integer PRIMARY KEY AUTOINCREMENT,
    session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    parent_id  integer REFERENCES refresh_tokens (id) ON DELETE CASCADE,
    token_hash blob NOT NULL UNIQUE,
    created_at datetime NOT NULL,
    used_at    datetime
);

CREATE INDEX refresh_tokens_parent_idx ON refresh_tokens (parent_id);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE security_events (
    id         integer PRIMARY KEY AUTOINCREMENT,
    user_id    text,
    session_id text,
    kind       text NOT NULL,
    ip         text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT '',
    detail     text NOT NULL DEFAULT '',
    created_at datetime NOT NULL
);

CREATE INDEX security_events_user_idx ON security_events (user_id, created_at);

-- +goose Down
DROP TABLE security_events;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
