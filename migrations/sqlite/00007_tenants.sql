-- +goose Up
-- Tenant ids become operator-chosen slugs ([a-z0-9][a-z0-9_-]{0,62}, e.g. "acme", "179"), and the
-- default tenant, until now the nil uuid, becomes "default". Every column holding a tenant id follows;
-- the throttle subjects ("<tenant>:<email>") are renamed so failures counted before the upgrade
-- still count. The foreign keys are checked at commit, once parent and children agree again.
PRAGMA defer_foreign_keys = ON;

UPDATE tenants SET id = 'default' WHERE id = '00000000-0000-0000-0000-000000000000';
UPDATE users SET tenant_id = 'default' WHERE tenant_id = '00000000-0000-0000-0000-000000000000';
UPDATE sessions SET tenant_id = 'default' WHERE tenant_id = '00000000-0000-0000-0000-000000000000';

UPDATE login_failures SET subject = 'default' || substr(subject, 37)
    WHERE subject LIKE '00000000-0000-0000-0000-000000000000:%';

-- Settings are one JSON object (snake_case keys, as in the default_tenant block of config.yaml): the
-- service reads them through a per-instance cache, never in a hot statement.
ALTER TABLE tenants ADD COLUMN settings text NOT NULL DEFAULT '{}';

-- Set only by an admin; role is a claim of the access token, metadata a JSON object of at most 4 KiB.
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'user';
ALTER TABLE users ADD COLUMN metadata text NOT NULL DEFAULT '{}';

-- A session opened while its tenant's refresh_rotation is false has one refresh token, kept for its
-- life: each use records last_used_at (its idle window runs from there) instead of spending it. The
-- flag is on the token, not the session, so the rotation reads it from the row it updates anyway.
ALTER TABLE refresh_tokens ADD COLUMN kept boolean NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN last_used_at datetime;

-- The From of the tenant the message is for; NULL sends from mail.from.
ALTER TABLE outbox ADD COLUMN from_addr text;

-- +goose Down
ALTER TABLE outbox DROP COLUMN from_addr;
ALTER TABLE refresh_tokens DROP COLUMN last_used_at;
ALTER TABLE refresh_tokens DROP COLUMN kept;
ALTER TABLE users DROP COLUMN metadata;
ALTER TABLE users DROP COLUMN role;
ALTER TABLE tenants DROP COLUMN settings;

PRAGMA defer_foreign_keys = ON;
UPDATE login_failures SET subject = '00000000-0000-0000-0000-000000000000' || substr(subject, 8)
    WHERE subject LIKE 'default:%';
UPDATE tenants SET id = '00000000-0000-0000-0000-000000000000' WHERE id = 'default';
UPDATE users SET tenant_id = '00000000-0000-0000-0000-000000000000' WHERE tenant_id = 'default';
UPDATE sessions SET tenant_id = '00000000-0000-0000-0000-000000000000' WHERE tenant_id = 'default';
