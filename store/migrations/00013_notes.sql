-- +goose Up
-- Internal notes: what agents write to each other about a conversation. They
-- live apart from messages on purpose: the messages table's rows are what the
-- provider is sent (the outbox reads queued 'out' rows) and what the session
-- rules count (the triggers of 00010), and a note must never be either.
CREATE TABLE notes (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    agent_id        INTEGER NOT NULL REFERENCES agents (id),
    body            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX notes_by_conversation ON notes (conversation_id, id);

-- The agents a note mentions (@login). seen_at is 0 until the agent has seen
-- the mention; a mention of oneself is stored already seen.
CREATE TABLE note_mentions (
    agent_id INTEGER NOT NULL REFERENCES agents (id),
    note_id  INTEGER NOT NULL REFERENCES notes (id),
    seen_at  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, note_id)
) WITHOUT ROWID;
-- The header's badge counts an agent's unseen mentions from this alone.
CREATE INDEX note_mentions_unseen ON note_mentions (agent_id, note_id) WHERE seen_at = 0;
CREATE INDEX note_mentions_by_note ON note_mentions (note_id);

-- A note event ("note") names its note, as a message event names its message.
ALTER TABLE events ADD COLUMN note_id INTEGER REFERENCES notes (id);

-- +goose Down
ALTER TABLE events DROP COLUMN note_id;
DROP TABLE note_mentions;
DROP TABLE notes;
