-- +goose Up
-- Webhooks (SPEC 13); see the Postgres migration. SQLite cannot change a column's default, so the
-- column starts pending for every row and the events already logged are then marked as old news.
ALTER TABLE security_events ADD COLUMN webhook_pending boolean NOT NULL DEFAULT true;
UPDATE security_events SET webhook_pending = false;
CREATE INDEX security_events_webhook_idx ON security_events (id) WHERE webhook_pending;

CREATE TABLE webhook_deliveries (
    id              text PRIMARY KEY,
    event_id        integer NOT NULL,
    endpoint        text NOT NULL,
    event_type      text NOT NULL,
    tenant_id       text,
    body            text NOT NULL,
    status          text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      datetime NOT NULL,
    next_attempt_at datetime NOT NULL,
    locked_until    datetime,
    claim_token     text,
    last_status     integer,
    last_error      text,
    finished_at     datetime,
    UNIQUE (event_id, endpoint)
);

CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (status, created_at);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP INDEX security_events_webhook_idx;
ALTER TABLE security_events DROP COLUMN webhook_pending;
