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
-- SQLite cannot drop a column that references another table: the events
-- table is rebuilt without it. Note events go; the others keep their ids, and
-- the id sequence stays where it was, so no id is ever handed out twice.
CREATE TABLE events_before_notes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    message_id      INTEGER REFERENCES messages (id),
    created_at      INTEGER NOT NULL
);
INSERT INTO events_before_notes (id, kind, conversation_id, message_id, created_at)
    SELECT id, kind, conversation_id, message_id, created_at FROM events WHERE note_id IS NULL;
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'events_before_notes', seq FROM sqlite_sequence WHERE name = 'events'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events_before_notes');
UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'events'))
    WHERE name = 'events_before_notes';
-- Triggers of other migrations write to events (00011's messages_reopen):
-- the legacy rename leaves them alone, to find the rebuilt table by its name.
PRAGMA legacy_alter_table = ON;
DROP TABLE events;
ALTER TABLE events_before_notes RENAME TO events;
PRAGMA legacy_alter_table = OFF;
DROP TABLE note_mentions;
DROP TABLE notes;
