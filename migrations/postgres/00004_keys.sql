-- +goose Up
-- Generated on first start when no key or secret is configured, so every instance on this database
-- and every restart agree on them.
CREATE TABLE signing_keys (
    id          text PRIMARY KEY,
    alg         text NOT NULL,
    private_key bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    retired_at  timestamptz
);

CREATE TABLE server_secrets (
    name       text NOT NULL,
    version    integer NOT NULL,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (name, version)
);

-- +goose Down
DROP TABLE server_secrets;
DROP TABLE signing_keys;
