-- +goose Up
-- The outbox's bookkeeping for business messages that have not reached the
-- provider yet: how often sending failed, when to try again, and why.
ALTER TABLE messages ADD COLUMN attempts        INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN last_error      TEXT    NOT NULL DEFAULT '';
-- A client's image or file as the provider announced it: its (short-lived) URL
-- and file name, kept until the attachment is downloaded and stored.
ALTER TABLE messages ADD COLUMN media_url       TEXT    NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN file_name       TEXT    NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE messages DROP COLUMN file_name;
ALTER TABLE messages DROP COLUMN media_url;
ALTER TABLE messages DROP COLUMN last_error;
ALTER TABLE messages DROP COLUMN next_attempt_at;
ALTER TABLE messages DROP COLUMN attempts;
