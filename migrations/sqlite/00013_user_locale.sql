-- +goose Up
-- The language a user registered in (issue 15): their emails are chosen by it before their tenant's
-- locale. '' means the tenant's.
ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE users DROP COLUMN locale;
