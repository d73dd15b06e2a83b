-- +goose Up
-- Self-service account changes (issue 15): a code may now confirm an email change or an account
-- deletion. pending_email is the address an email_change code moves the account to; NULL on one that
-- must never change it (the code a request for an address taken in the tenant stores, so that request
-- looks like any other and its confirmation always fails). SQLite cannot alter a CHECK constraint, so
-- the table is rebuilt (nothing references it by foreign key).
CREATE TABLE email_codes_new (
    id           text PRIMARY KEY,
    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose      text NOT NULL CHECK (purpose IN ('signup', 'login', 'reset', 'email_change', 'delete_account')),
    code_hash    blob NOT NULL,
    pending_password_hash text,
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    expires_at   datetime NOT NULL,
    used_at      datetime,
    created_at   datetime NOT NULL,
    pending_email text
);
INSERT INTO email_codes_new (id, user_id, purpose, code_hash, pending_password_hash, attempts, max_attempts, expires_at, used_at, created_at)
    SELECT id, user_id, purpose, code_hash, pending_password_hash, attempts, max_attempts, expires_at, used_at, created_at FROM email_codes;
DROP TABLE email_codes;
ALTER TABLE email_codes_new RENAME TO email_codes;
CREATE UNIQUE INDEX email_codes_live_key ON email_codes (user_id, purpose) WHERE used_at IS NULL;
CREATE INDEX email_codes_expires_idx ON email_codes (expires_at);

-- +goose Down
CREATE TABLE email_codes_old (
    id           text PRIMARY KEY,
    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose      text NOT NULL CHECK (purpose IN ('signup', 'login', 'reset')),
    code_hash    blob NOT NULL,
    pending_password_hash text,
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    expires_at   datetime NOT NULL,
    used_at      datetime,
    created_at   datetime NOT NULL
);
INSERT INTO email_codes_old (id, user_id, purpose, code_hash, pending_password_hash, attempts, max_attempts, expires_at, used_at, created_at)
    SELECT id, user_id, purpose, code_hash, pending_password_hash, attempts, max_attempts, expires_at, used_at, created_at FROM email_codes
    WHERE purpose IN ('signup', 'login', 'reset');
DROP TABLE email_codes;
ALTER TABLE email_codes_old RENAME TO email_codes;
CREATE UNIQUE INDEX email_codes_live_key ON email_codes (user_id, purpose) WHERE used_at IS NULL;
CREATE INDEX email_codes_expires_idx ON email_codes (expires_at);
