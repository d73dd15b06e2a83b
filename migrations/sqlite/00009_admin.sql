-- +goose Up
-- Admin API keys (issue 12). Only the SHA-256 of a key is stored: a key is "lak_" + 256 random bits,
-- so a fast hash is as good as a slow one and a lookup costs one index probe. tenant_id NULL is a
-- key for every tenant; a tenant's keys go with it, so a tenant created later under the same id is
-- never reachable with a key made for the old one.
CREATE TABLE admin_keys (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    tenant_id    text REFERENCES tenants (id) ON DELETE CASCADE,
    key_hash     blob NOT NULL UNIQUE,
    created_at   datetime NOT NULL,
    last_used_at datetime,
    revoked_at   datetime
);

-- Security events name their tenant, so a tenant's admin key reads only its own, and who made a
-- change by hand: an admin key (its id and name, never the secret) or a command line run.
ALTER TABLE security_events ADD COLUMN tenant_id text;
ALTER TABLE security_events ADD COLUMN actor_type text NOT NULL DEFAULT '';
ALTER TABLE security_events ADD COLUMN actor_id text NOT NULL DEFAULT '';
ALTER TABLE security_events ADD COLUMN actor_name text NOT NULL DEFAULT '';
UPDATE security_events SET tenant_id = (SELECT u.tenant_id FROM users u WHERE u.id = security_events.user_id)
    WHERE user_id IS NOT NULL;
CREATE INDEX security_events_tenant_idx ON security_events (tenant_id, id);

-- The admin user list pages through a tenant's users in email order and filters by email prefix:
-- ranges over this index (SQLite compares text byte by byte, in which a prefix is a range). It
-- mirrors the Postgres index, which needs its own collation for that.
CREATE INDEX users_list_idx ON users (tenant_id, lower(email));

-- +goose Down
DROP INDEX users_list_idx;
DROP INDEX security_events_tenant_idx;
ALTER TABLE security_events DROP COLUMN actor_name;
ALTER TABLE security_events DROP COLUMN actor_id;
ALTER TABLE security_events DROP COLUMN actor_type;
ALTER TABLE security_events DROP COLUMN tenant_id;
DROP TABLE admin_keys;
