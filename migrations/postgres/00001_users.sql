-- +goose Up
CREATE TABLE tenants (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every user belongs to a tenant; this one exists so single-tenant installs never think about it.
INSERT INTO tenants (id, name) VALUES ('00000000-0000-0000-0000-000000000000', 'default');

CREATE TABLE users (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id),
    email             text NOT NULL,
    password_hash     text NOT NULL,
    email_verified_at timestamptz,
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, lower(email));

-- +goose Down
DROP TABLE users;
DROP TABLE tenants;
