-- +goose Up
-- Consecutive password failures per (login subject, client IP); ip = '' holds the subject-wide count.
-- The subject is tenant id + ":" + normalised email, not a user id, so unknown emails are throttled
-- exactly like known ones and a 429 reveals nothing about which accounts exist.
CREATE TABLE login_failures (
    subject         text NOT NULL,
    ip              text NOT NULL,
    failures        integer NOT NULL DEFAULT 0,
    last_failure_at datetime NOT NULL,
    locked_until    datetime,
    PRIMARY KEY (subject, ip)
);

-- +goose Down
DROP TABLE login_failures;
