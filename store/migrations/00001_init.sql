-- +goose Up
-- Times are stored as integer milliseconds since the Unix epoch (UTC), so that
-- comparisons and ordering in SQL are exact and cheap.

CREATE TABLE agents (
    id         INTEGER PRIMARY KEY,
    login      TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('agent', 'admin')),
    created_at INTEGER NOT NULL
);

CREATE TABLE contacts (
    id         INTEGER PRIMARY KEY,
    phone      TEXT    NOT NULL UNIQUE, -- E.164
    name       TEXT    NOT NULL,
    country    TEXT    NOT NULL DEFAULT '', -- ISO 3166 region code, from the number
    created_at INTEGER NOT NULL
);

-- One conversation per contact on this channel.
CREATE TABLE conversations (
    id                   INTEGER PRIMARY KEY,
    contact_id           INTEGER NOT NULL UNIQUE REFERENCES contacts (id),
    -- The newest message and when it was stored, kept in the same transaction as
    -- every insert so the list can be ordered by an index instead of a scan of
    -- all messages.
    last_message_id      INTEGER NOT NULL DEFAULT 0,
    last_activity_at     INTEGER NOT NULL DEFAULT 0,
    -- Inbound messages with a larger id are unread.
    last_read_message_id INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL
);
CREATE INDEX conversations_by_activity ON conversations (last_activity_at DESC, id DESC);

CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    number          INTEGER NOT NULL CHECK (number >= 1),
    started_at      INTEGER NOT NULL,
    ends_at         INTEGER NOT NULL CHECK (ends_at > started_at),
    opened_by       TEXT    NOT NULL CHECK (opened_by IN ('client', 'rollover')),
    UNIQUE (conversation_id, number)
);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    session_id      INTEGER NOT NULL REFERENCES sessions (id),
    direction       TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    kind            TEXT    NOT NULL CHECK (kind IN ('text', 'image', 'file')),
    body            TEXT    NOT NULL DEFAULT '',
    -- queued, sent, delivered, seen, failed, undelivered, expired for 'out';
    -- received for 'in'.
    status          TEXT    NOT NULL,
    status_reason   TEXT    NOT NULL DEFAULT '',
    status_at       INTEGER NOT NULL,
    -- 1 while the message counts for the session rules (S6); a synchronous
    -- rejection by the provider releases it.
    counted         INTEGER NOT NULL DEFAULT 0 CHECK (counted IN (0, 1)),
    agent_id        INTEGER REFERENCES agents (id),
    -- The client's own timestamp for 'in'; the acceptance time for 'out'.
    sent_at         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    -- The provider's id for this message (Routee's trackingId), once known.
    provider_id     TEXT,
    -- A key identifying an inbound delivery, so a retried webhook is stored once.
    dedupe_key      TEXT,
    -- Business messages name the agent who sent them; an integration may send with none.
    CHECK (direction = 'out' OR agent_id IS NULL)
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
-- The client's last message, from which the unanswered count runs (S4).
CREATE INDEX messages_by_direction ON messages (conversation_id, direction, id);
CREATE INDEX messages_by_session ON messages (session_id, id);
CREATE INDEX messages_queued ON messages (id) WHERE status = 'queued';
CREATE UNIQUE INDEX messages_by_provider_id ON messages (provider_id) WHERE provider_id IS NOT NULL;
CREATE UNIQUE INDEX messages_by_dedupe_key ON messages (dedupe_key) WHERE dedupe_key IS NOT NULL;

-- Append-only: every change an agent's page must show. The id only grows
-- (AUTOINCREMENT never reuses one), so a page can resume after the last id it saw.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    message_id      INTEGER REFERENCES messages (id),
    created_at      INTEGER NOT NULL
);

-- +goose Down
DROP TABLE events;
DROP TABLE messages;
DROP TABLE sessions;
DROP TABLE conversations;
DROP TABLE contacts;
DROP TABLE agents;
