-- +goose Up
-- A conversation's status and assignee (issue 11).
--
-- status: open, pending (waiting on the client), snoozed (until snoozed_until,
-- stored milliseconds; 0 for every other status) or resolved. A client message
-- reopens a pending, snoozed or resolved conversation: the trigger below does
-- it in the transaction that stores the message, whatever path received it.
ALTER TABLE conversations ADD COLUMN status TEXT NOT NULL DEFAULT 'open'
    CHECK (status IN ('open', 'pending', 'snoozed', 'resolved'));
ALTER TABLE conversations ADD COLUMN snoozed_until INTEGER NOT NULL DEFAULT 0;
-- At most one assignee; NULL is unassigned.
ALTER TABLE conversations ADD COLUMN assignee_id INTEGER REFERENCES agents (id);

-- The views to come ("WHERE status = ? AND assignee_id = ? ORDER BY
-- last_activity_at DESC, id DESC", and assignee_id IS NULL for Unassigned)
-- are one range of this index, in list order: no sort, no scan.
CREATE INDEX conversations_by_status_assignee
    ON conversations (status, assignee_id, last_activity_at DESC, id DESC);
-- The snoozed conversations by wake-up time: the waker's next due one.
CREATE INDEX conversations_snoozed ON conversations (snoozed_until) WHERE status = 'snoozed';

-- The round-robin auto-assignment: one row, off by default. last_agent_id is
-- the agent the rotation assigned last; the next is the online agent after it.
CREATE TABLE auto_assign (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    enabled       INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    last_agent_id INTEGER NOT NULL DEFAULT 0
);
INSERT INTO auto_assign (id) VALUES (1);

-- +goose StatementBegin
CREATE TRIGGER messages_reopen AFTER INSERT ON messages
WHEN NEW.direction = 'in'
BEGIN
    -- The audit row and the event come first: they read the status before.
    INSERT INTO audit (at, agent_id, action, conversation_id, message_id, detail)
    SELECT NEW.created_at, NULL, 'status', c.id, NEW.id,
           json_object('from', c.status, 'to', 'open', 'reason', 'client_message')
      FROM conversations c WHERE c.id = NEW.conversation_id AND c.status <> 'open';
    INSERT INTO events (kind, conversation_id, message_id, created_at)
    SELECT 'conversation', c.id, NULL, NEW.created_at
      FROM conversations c WHERE c.id = NEW.conversation_id AND c.status <> 'open';
    UPDATE conversations SET status = 'open', snoozed_until = 0
     WHERE id = NEW.conversation_id AND status <> 'open';
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER messages_reopen;
DROP TABLE auto_assign;
DROP INDEX conversations_snoozed;
DROP INDEX conversations_by_status_assignee;
ALTER TABLE conversations DROP COLUMN assignee_id;
ALTER TABLE conversations DROP COLUMN snoozed_until;
ALTER TABLE conversations DROP COLUMN status;
