-- +goose Up
-- Self-service account changes (issue 15): a code may now confirm an email change or an account
-- deletion. pending_email is the address an email_change code moves the account to; NULL on one that
-- must never change it (the code a request for an address taken in the tenant stores, so that request
-- looks like any other and its confirmation always fails).
ALTER TABLE email_codes DROP CONSTRAINT email_codes_purpose_check;
ALTER TABLE email_codes ADD CONSTRAINT email_codes_purpose_check
    CHECK (purpose IN ('signup', 'login', 'reset', 'email_change', 'delete_account'));
ALTER TABLE email_codes ADD COLUMN pending_email text;

-- +goose Down
DELETE FROM email_codes WHERE purpose IN ('email_change', 'delete_account');
ALTER TABLE email_codes DROP COLUMN pending_email;
ALTER TABLE email_codes DROP CONSTRAINT email_codes_purpose_check;
ALTER TABLE email_codes ADD CONSTRAINT email_codes_purpose_check CHECK (purpose IN ('signup', 'login', 'reset'));
