-- +goose Up
-- When the inbox received the client message that opened a session. A
-- client's clock a little ahead makes started_at later than this; replies are
-- allowed from the earlier of the two (S1). 0 for a rollover.
ALTER TABLE sessions ADD COLUMN received_at INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET received_at = coalesce(
    (SELECT created_at FROM messages WHERE session_id = sessions.id ORDER BY id LIMIT 1), started_at)
WHERE opened_by = 'client';

-- The rates a session is billed at, frozen when its first business message
-- counts (S7); NULL while it was never billed. Sessions billed before this
-- migration get the rates in force when the store next opens (Store.Open
-- fills every billed session that has none: the flags are not visible here).
ALTER TABLE sessions ADD COLUMN rate_text  REAL;
ALTER TABLE sessions ADD COLUMN rate_media REAL;
ALTER TABLE sessions ADD COLUMN currency   TEXT;

-- A business message sent by "Send again" names the failed one it repeats.
-- The unique index makes "a failed message is sent again at most once" a
-- property of the data, whatever races above it.
ALTER TABLE messages ADD COLUMN retry_of INTEGER REFERENCES messages (id);
CREATE UNIQUE INDEX messages_by_retry_of ON messages (retry_of) WHERE retry_of IS NOT NULL;

-- +goose Down
DROP INDEX messages_by_retry_of;
ALTER TABLE messages DROP COLUMN retry_of;
ALTER TABLE sessions DROP COLUMN currency;
ALTER TABLE sessions DROP COLUMN rate_media;
ALTER TABLE sessions DROP COLUMN rate_text;
ALTER TABLE sessions DROP COLUMN received_at;
