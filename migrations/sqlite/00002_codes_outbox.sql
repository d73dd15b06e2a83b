-- +goose Up
CREATE TABLE email_codes (
    id           text PRIMARY KEY,
    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose      text NOT NULL CHECK (purpose IN ('signup', 'login', 'reset')),
    code_hash    blob NOT NULL,
    -- For signup codes: the password given with that registration, applied only when the code is
    -- validated, so the password that takes effect is the one whose registrant proved the address.
    pending_password_hash text,
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    expires_at   datetime NOT NULL,
    used_at      datetime,
    created_at   datetime NOT NULL
);

-- One live code per user and purpose, enforced by the database rather than by care.
CREATE UNIQUE INDEX email_codes_live_key ON email_codes (user_id, purpose) WHERE used_at IS NULL;

CREATE TABLE outbox (
    id              text PRIMARY KEY,
    user_id         text REFERENCES users (id) ON DELETE CASCADE,
    purpose         text NOT NULL,
    template        text NOT NULL,
    to_addr         text NOT NULL,
    data            text,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      datetime NOT NULL,
    next_attempt_at datetime NOT NULL,
    expires_at      datetime NOT NULL,
    locked_until    datetime,
    sent_at         datetime,
    last_error      text
);

CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE sent_at IS NULL;
CREATE INDEX outbox_user_created_idx ON outbox (user_id, created_at);

-- +goose Down
DROP TABLE outbox;
DROP TABLE email_codes;
