-- +goose Up
-- Tenant ids become operator-chosen slugs ([a-z0-9][a-z0-9_-]{0,62}, e.g. "acme", "179"), and the
-- default tenant, until now the nil uuid, becomes "default". Every column holding a tenant id follows,
-- with its foreign key and the per-tenant email index; the throttle subjects ("<tenant>:<email>")
-- are renamed so failures counted before the upgrade still count.
ALTER TABLE users DROP CONSTRAINT users_tenant_id_fkey;
ALTER TABLE sessions DROP CONSTRAINT sessions_tenant_id_fkey;

ALTER TABLE tenants ALTER COLUMN id TYPE text
    USING CASE WHEN id = '00000000-0000-0000-0000-000000000000' THEN 'default' ELSE id::text END;
ALTER TABLE users ALTER COLUMN tenant_id TYPE text
    USING CASE WHEN tenant_id = '00000000-0000-0000-0000-000000000000' THEN 'default' ELSE tenant_id::text END;
ALTER TABLE sessions ALTER COLUMN tenant_id TYPE text
    USING CASE WHEN tenant_id = '00000000-0000-0000-0000-000000000000' THEN 'default' ELSE tenant_id::text END;

ALTER TABLE users ADD CONSTRAINT users_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE sessions ADD CONSTRAINT sessions_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id);

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
ALTER TABLE refresh_tokens ADD COLUMN kept boolean NOT NULL DEFAULT false;
ALTER TABLE refresh_tokens ADD COLUMN last_used_at timestamptz;

-- The From of the tenant the message is for; NULL sends from mail.from.
ALTER TABLE outbox ADD COLUMN from_addr text;

-- +goose Down
ALTER TABLE outbox DROP COLUMN from_addr;
ALTER TABLE refresh_tokens DROP COLUMN last_used_at;
ALTER TABLE refresh_tokens DROP COLUMN kept;
ALTER TABLE users DROP COLUMN metadata;
ALTER TABLE users DROP COLUMN role;
ALTER TABLE tenants DROP COLUMN settings;

UPDATE login_failures SET subject = '00000000-0000-0000-0000-000000000000' || substr(subject, 8)
    WHERE subject LIKE 'default:%';

ALTER TABLE users DROP CONSTRAINT users_tenant_id_fkey;
ALTER TABLE sessions DROP CONSTRAINT sessions_tenant_id_fkey;
-- Only ids that were uuids before can go back.
ALTER TABLE tenants ALTER COLUMN id TYPE uuid
    USING CASE WHEN id = 'default' THEN '00000000-0000-0000-0000-000000000000' ELSE id END::uuid;
ALTER TABLE users ALTER COLUMN tenant_id TYPE uuid
    USING CASE WHEN tenant_id = 'default' THEN '00000000-0000-0000-0000-000000000000' ELSE tenant_id END::uuid;
ALTER TABLE sessions ALTER COLUMN tenant_id TYPE uuid
    USING CASE WHEN tenant_id = 'default' THEN '00000000-0000-0000-0000-000000000000' ELSE tenant_id END::uuid;
ALTER TABLE users ADD CONSTRAINT users_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE sessions ADD CONSTRAINT sessions_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id);
