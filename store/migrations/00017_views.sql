-- +goose Up
-- The session-aware views of issue 11 and unread per agent.
--
-- session_ends_at is when the conversation's latest session ends (stored
-- milliseconds, 0 when the client never wrote), kept by the triggers below in
-- the transaction that opens, rolls over or undoes a session. With the
-- counters of 00010 it answers every view from the conversation row alone:
--   waiting on us      last_in_id > 0 AND unanswered = 0 AND session_ends_at > now
--   closed unanswered  last_in_id > 0 AND unanswered = 0 AND session_ends_at <= now
--   expiring           now < session_ends_at <= now + window, unanswered below the limit
--   locked             session_ends_at > now AND unanswered >= the limit
ALTER TABLE conversations ADD COLUMN session_ends_at INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET session_ends_at = coalesce((SELECT ends_at FROM sessions s
    WHERE s.conversation_id = conversations.id ORDER BY number DESC LIMIT 1), 0);

-- The open sessions are the top of this index (the last day at most), so
-- Expiring and Locked are a short range of it, counts included.
CREATE INDEX conversations_by_end ON conversations (session_ends_at, id);
-- The clients waiting on us, by status: a range above now is "Waiting on
-- us" in its order (soonest end first), the rest below now is "Closed
-- unanswered".
CREATE INDEX conversations_waiting ON conversations (status, session_ends_at, id)
    WHERE last_in_id > 0 AND unanswered = 0;

-- +goose StatementBegin
CREATE TRIGGER sessions_end_insert AFTER INSERT ON sessions BEGIN
    UPDATE conversations SET session_ends_at = (SELECT ends_at FROM sessions
            WHERE conversation_id = NEW.conversation_id ORDER BY number DESC LIMIT 1)
     WHERE id = NEW.conversation_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER sessions_end_update AFTER UPDATE OF ends_at, number ON sessions BEGIN
    UPDATE conversations SET session_ends_at = (SELECT ends_at FROM sessions
            WHERE conversation_id = NEW.conversation_id ORDER BY number DESC LIMIT 1)
     WHERE id = NEW.conversation_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER sessions_end_delete AFTER DELETE ON sessions BEGIN
    UPDATE conversations SET session_ends_at = coalesce((SELECT ends_at FROM sessions
            WHERE conversation_id = OLD.conversation_id ORDER BY number DESC LIMIT 1), 0)
     WHERE id = OLD.conversation_id;
END;
-- +goose StatementEnd

-- What each agent has read: the client's messages up to read_in_id. A
-- conversation without a row for the agent is read up to its
-- last_read_message_id, the one mark all agents shared before this migration
-- (so upgrading makes nothing unread); that column no longer moves.
CREATE TABLE conversation_reads (
    agent_id        INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    read_in_id      INTEGER NOT NULL,
    PRIMARY KEY (agent_id, conversation_id)
) WITHOUT ROWID;
-- The hub reads the marks of the conversations a batch touched, for every agent.
CREATE INDEX conversation_reads_by_conversation ON conversation_reads (conversation_id, agent_id);

-- +goose Down
DROP TABLE conversation_reads;
DROP TRIGGER sessions_end_delete;
DROP TRIGGER sessions_end_update;
DROP TRIGGER sessions_end_insert;
DROP INDEX conversations_waiting;
DROP INDEX conversations_by_end;
ALTER TABLE conversations DROP COLUMN session_ends_at;
