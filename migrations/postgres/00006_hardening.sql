-- +goose Up
-- Outbox delivery (issue 11): claim_token names the claim that holds a message's lease, so only that
-- claim can renew it or mark the message sent, failed or dead; dead_at marks a message the mail
-- server refused for good (a 5xx), never retried; code_id links a code email to its code, so mail for
-- a code that is no longer live is not sent. data may hold a sealed payload (seal.PurposeOutbox).
ALTER TABLE outbox ADD COLUMN claim_token text;
ALTER TABLE outbox ADD COLUMN dead_at timestamptz;
ALTER TABLE outbox ADD COLUMN code_id uuid;

DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE sent_at IS NULL AND dead_at IS NULL;

-- The retention job deletes by age in small batches; each batch finds its rows through these.
-- sessions.expires_at never changes after insert and revoked_at rarely does, so neither index costs
-- the hot rotation path its HOT updates (idle_expires_at, rewritten by rotations, is not indexed).
CREATE INDEX outbox_created_idx ON outbox (created_at);
CREATE INDEX email_codes_expires_idx ON email_codes (expires_at);
CREATE INDEX security_events_created_idx ON security_events (created_at);
CREATE INDEX login_failures_last_idx ON login_failures (last_failure_at);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX sessions_revoked_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- +goose Down
DROP INDEX sessions_revoked_idx;
DROP INDEX sessions_expires_idx;
DROP INDEX login_failures_last_idx;
DROP INDEX security_events_created_idx;
DROP INDEX email_codes_expires_idx;
DROP INDEX outbox_created_idx;
DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE sent_at IS NULL;
ALTER TABLE outbox DROP COLUMN code_id;
ALTER TABLE outbox DROP COLUMN dead_at;
ALTER TABLE outbox DROP COLUMN claim_token;
