-- +goose Up
-- What the reports (issue 12) need of every session and client message, kept
-- by triggers in the transaction that changes the messages, like the counters
-- of 00010: a report over a month then reads one row per session and never
-- walks the messages.
--
-- sessions:
--   first_out_id/at, first_agent_id: the session's first counted business
--     message, when it was accepted and by whom (the agent a session's cost
--     and first response are put down to); NULL while none counts.
--   last_in_id, last_out_id: its newest client message and newest counted
--     business message (0: none). The client wrote last when last_in_id is
--     the larger: an ended session in that state was lost (case 9).
--   peak_unanswered: the longest run of business messages with no client
--     message between (S4, the run carries across a rollover) that ended in
--     this session; it reached the limit when it equals the setting.
-- messages (client's):
--   answered_by, answer_ms: the first counted business message after it in
--   the conversation, sent before its session ended, and how long after the
--   message was received; NULL while unanswered.
ALTER TABLE sessions ADD COLUMN first_out_id    INTEGER;
ALTER TABLE sessions ADD COLUMN first_out_at    INTEGER;
ALTER TABLE sessions ADD COLUMN first_agent_id  INTEGER;
ALTER TABLE sessions ADD COLUMN last_in_id      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN last_out_id     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN peak_unanswered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN answered_by INTEGER;
ALTER TABLE messages ADD COLUMN answer_ms   INTEGER;

-- A report's date range is a range of sessions_by_started (00020).
-- The client messages received in a range, with their answer: covering.
CREATE INDEX messages_in_by_time ON messages (created_at, answer_ms, answered_by) WHERE direction = 'in';
-- The client messages a released business message had answered.
CREATE INDEX messages_by_answer ON messages (answered_by) WHERE answered_by IS NOT NULL;

-- Fill in what is already stored.
UPDATE sessions SET
    first_out_id = (SELECT min(id) FROM messages m WHERE m.session_id = sessions.id AND m.direction = 'out' AND m.counted = 1),
    last_out_id  = coalesce((SELECT max(id) FROM messages m WHERE m.session_id = sessions.id AND m.direction = 'out' AND m.counted = 1), 0),
    last_in_id   = coalesce((SELECT max(id) FROM messages m WHERE m.session_id = sessions.id AND m.direction = 'in'), 0);
UPDATE sessions SET
    first_out_at   = (SELECT created_at FROM messages WHERE id = sessions.first_out_id),
    first_agent_id = (SELECT agent_id FROM messages WHERE id = sessions.first_out_id)
 WHERE first_out_id IS NOT NULL;
UPDATE sessions SET peak_unanswered = coalesce((
    SELECT max((SELECT count(*) FROM messages o2
                 WHERE o2.conversation_id = o.conversation_id AND o2.direction = 'out' AND o2.counted = 1
                   AND o2.id <= o.id
                   AND o2.id > coalesce((SELECT max(id) FROM messages i WHERE i.conversation_id = o.conversation_id
                                            AND i.direction = 'in' AND i.id < o.id), 0)))
      FROM messages o WHERE o.session_id = sessions.id AND o.direction = 'out' AND o.counted = 1), 0);
UPDATE messages SET (answered_by, answer_ms) = (
    SELECT o.id, o.created_at - messages.created_at FROM messages o
     WHERE o.conversation_id = messages.conversation_id AND o.direction = 'out' AND o.counted = 1
       AND o.id > messages.id
       AND o.created_at < (SELECT ends_at FROM sessions WHERE id = messages.session_id)
     ORDER BY o.id LIMIT 1)
 WHERE direction = 'in';

-- +goose StatementBegin
CREATE TRIGGER messages_report_insert AFTER INSERT ON messages BEGIN
    UPDATE sessions SET last_in_id = NEW.id
     WHERE id = NEW.session_id AND NEW.direction = 'in';
    UPDATE sessions SET
           first_out_id   = coalesce(first_out_id, NEW.id),
           first_out_at   = coalesce(first_out_at, NEW.created_at),
           first_agent_id = CASE WHEN first_out_id IS NULL THEN NEW.agent_id ELSE first_agent_id END,
           last_out_id    = NEW.id,
           peak_unanswered = max(peak_unanswered, (
               SELECT count(*) FROM messages o
                WHERE o.conversation_id = NEW.conversation_id AND o.direction = 'out' AND o.counted = 1
                  AND o.id > coalesce((SELECT max(id) FROM messages i WHERE i.conversation_id = NEW.conversation_id
                                          AND i.direction = 'in'), 0)))
     WHERE id = NEW.session_id AND NEW.direction = 'out' AND NEW.counted = 1;
    -- The client messages since the previous counted business message, whose
    -- session has not ended, are answered by this one.
    UPDATE messages SET answered_by = NEW.id, answer_ms = NEW.created_at - created_at
     WHERE NEW.direction = 'out' AND NEW.counted = 1
       AND conversation_id = NEW.conversation_id AND direction = 'in' AND answered_by IS NULL
       AND id > coalesce((SELECT max(id) FROM messages o WHERE o.conversation_id = NEW.conversation_id
                             AND o.direction = 'out' AND o.counted = 1 AND o.id < NEW.id), 0)
       AND (SELECT ends_at FROM sessions WHERE id = messages.session_id) > NEW.created_at;
END;
-- +goose StatementEnd

-- A release (a synchronous rejection) or a move to another session (a void
-- rollover undone) recounts the sessions concerned from their messages, and
-- gives the client messages the released one had answered to the next one.
-- +goose StatementBegin
CREATE TRIGGER messages_report_update AFTER UPDATE OF counted, session_id ON messages
WHEN OLD.counted <> NEW.counted OR OLD.session_id <> NEW.session_id
BEGIN
    UPDATE sessions SET
        first_out_id = (SELECT min(id) FROM messages m WHERE m.session_id = sessions.id AND m.direction = 'out' AND m.counted = 1),
        last_out_id  = coalesce((SELECT max(id) FROM messages m WHERE m.session_id = sessions.id AND m.direction = 'out' AND m.counted = 1), 0),
        last_in_id   = coalesce((SELECT max(id) FROM messages m WHERE m.session_id = sessions.id AND m.direction = 'in'), 0)
     WHERE id IN (OLD.session_id, NEW.session_id);
    -- The unanswered run carries across sessions: a released message
    -- shortens the runs of every later message of the conversation.
    UPDATE sessions SET
        peak_unanswered = coalesce((
            SELECT max((SELECT count(*) FROM messages o2
                         WHERE o2.conversation_id = o.conversation_id AND o2.direction = 'out' AND o2.counted = 1
                           AND o2.id <= o.id
                           AND o2.id > coalesce((SELECT max(id) FROM messages i WHERE i.conversation_id = o.conversation_id
                                                    AND i.direction = 'in' AND i.id < o.id), 0)))
              FROM messages o WHERE o.session_id = sessions.id AND o.direction = 'out' AND o.counted = 1), 0)
     WHERE id IN (OLD.session_id, NEW.session_id)
        OR id IN (SELECT session_id FROM messages WHERE conversation_id = NEW.conversation_id AND id > NEW.id);
    UPDATE sessions SET
        first_out_at   = (SELECT created_at FROM messages WHERE id = sessions.first_out_id),
        first_agent_id = (SELECT agent_id FROM messages WHERE id = sessions.first_out_id)
     WHERE id IN (OLD.session_id, NEW.session_id);
    UPDATE messages SET (answered_by, answer_ms) = (
        SELECT o.id, o.created_at - messages.created_at FROM messages o
         WHERE o.conversation_id = messages.conversation_id AND o.direction = 'out' AND o.counted = 1
           AND o.id > messages.id
           AND o.created_at < (SELECT ends_at FROM sessions WHERE id = messages.session_id)
         ORDER BY o.id LIMIT 1)
     WHERE OLD.direction = 'out' AND OLD.counted = 1 AND NEW.counted = 0 AND answered_by = OLD.id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER messages_report_update;
DROP TRIGGER messages_report_insert;
DROP INDEX messages_by_answer;
DROP INDEX messages_in_by_time;
ALTER TABLE messages DROP COLUMN answer_ms;
ALTER TABLE messages DROP COLUMN answered_by;
ALTER TABLE sessions DROP COLUMN peak_unanswered;
ALTER TABLE sessions DROP COLUMN last_out_id;
ALTER TABLE sessions DROP COLUMN last_in_id;
ALTER TABLE sessions DROP COLUMN first_agent_id;
ALTER TABLE sessions DROP COLUMN first_out_at;
ALTER TABLE sessions DROP COLUMN first_out_id;
