-- +goose Up
CREATE TABLE tenants (
    id         text PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    created_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Every user belongs to a tenant; this one exists so single-tenant installs never think about it.
INSERT INTO tenants (id, name) VALUES ('00000000-0000-0000-0000-000000000000', 'default');

CREATE TABLE users (
    id                text PRIMARY KEY,
    tenant_id         text NOT NULL REFERENCES tenants (id),
    email             text NOT NULL,
    password_hash     text NOT NULL,
    email_verified_at datetime,
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at        datetime NOT NULL,
    updated_at        datetime NOT NULL
);

CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, lower(email));

-- +goose Down
DROP TABLE users;
DROP TABLE tenants;
