-- +goose Up
-- An image or file: one per message (a Viber session message carries one body
-- kind), or loose while the sandbox phone serves a client's upload. The bytes
-- live in the media folder under their SHA-256 (hash); rows only point at them.
CREATE TABLE attachments (
    id               INTEGER PRIMARY KEY,
    message_id       INTEGER UNIQUE REFERENCES messages (id),
    hash             TEXT    NOT NULL DEFAULT '', -- '' until a client's media is downloaded
    size             INTEGER NOT NULL DEFAULT 0,
    mime             TEXT    NOT NULL DEFAULT '',
    name             TEXT    NOT NULL DEFAULT '', -- sanitised file name
    width            INTEGER NOT NULL DEFAULT 0,
    height           INTEGER NOT NULL DEFAULT 0,
    thumb_hash       TEXT    NOT NULL DEFAULT '',
    -- The unguessable token of the public URL the provider fetches it from,
    -- valid until token_expires_at (the message's ttl plus a margin).
    token            TEXT UNIQUE,
    token_expires_at INTEGER NOT NULL DEFAULT 0,
    -- A client's media: pending until downloaded, then done, or failed after
    -- its last try; '' for what the inbox itself stored.
    download_state   TEXT    NOT NULL DEFAULT '' CHECK (download_state IN ('', 'pending', 'done', 'failed')),
    download_error   TEXT    NOT NULL DEFAULT '',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);
CREATE INDEX attachments_pending ON attachments (next_attempt_at) WHERE download_state = 'pending';
CREATE INDEX attachments_by_hash ON attachments (hash);

-- +goose Down
DROP TABLE attachments;
