-- +goose Up
-- Generated on first start when no key or secret is configured, so every instance on this database
-- and every restart agree on them.
CREATE TABLE signing_keys (
    id          text PRIMARY KEY,
    alg         text NOT NULL,
    private_key blob NOT NULL,
    created_at  datetime NOT NULL,
    retired_at  datetime
);

CREATE TABLE server_secrets (
    name       text NOT NULL,
    version    integer NOT NULL,
    value      blob NOT NULL,
    created_at datetime NOT NULL,
    PRIMARY KEY (name, version)
);

-- +goose Down
DROP TABLE server_secrets;
DROP TABLE signing_keys;
