-- +goose Up
-- Webhooks (SPEC 13). Every security event is a candidate: the column below marks the events not yet
-- fanned out to the configured endpoints. Existing events are old news (false); each event written
-- from now on starts pending (the default), so whatever records an event gets its webhook with no
-- change to the code that records it. The fan-out takes pending events with FOR UPDATE SKIP LOCKED,
-- queues their deliveries and clears the mark in one transaction: an event is queued once, however
-- many instances run, and no id-order cursor is needed (ids are not committed in order).
ALTER TABLE security_events ADD COLUMN webhook_pending boolean NOT NULL DEFAULT false;
ALTER TABLE security_events ALTER COLUMN webhook_pending SET DEFAULT true;
CREATE INDEX security_events_webhook_idx ON security_events (id) WHERE webhook_pending;

-- One delivery of one event to one endpoint (named as in the configuration). body is the signed JSON
-- as built at fan-out: it never holds an address, a code or a token, so erasing a user has nothing to
-- scrub here. status: pending (waiting, in flight, or failed and to be retried: last_error set),
-- delivered, or dead (out of attempts, refused for good, or its endpoint is no longer configured).
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    event_id        bigint NOT NULL,
    endpoint        text NOT NULL,
    event_type      text NOT NULL,
    tenant_id       text,
    body            text NOT NULL,
    status          text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    locked_until    timestamptz,
    claim_token     text,
    last_status     integer,
    last_error      text,
    finished_at     timestamptz,
    UNIQUE (event_id, endpoint)
);

CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (status, created_at);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP INDEX security_events_webhook_idx;
ALTER TABLE security_events DROP COLUMN webhook_pending;
