-- +goose Up
-- The conversation's latest session, kept by the triggers that keep its end
-- (00017), in the same statement and from the same read. Every list row, every
-- conversation and every client message's state joined its latest session
-- through a correlated "ORDER BY number DESC LIMIT 1": one more descent of the
-- sessions' index for each row, a tenth of the inbox page's query at 100k
-- conversations (issue 10). 0 when the client never wrote.
ALTER TABLE conversations ADD COLUMN latest_session_id INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET latest_session_id = coalesce((SELECT id FROM sessions s
    WHERE s.conversation_id = conversations.id ORDER BY number DESC LIMIT 1), 0);

DROP TRIGGER sessions_end_insert;
DROP TRIGGER sessions_end_update;
DROP TRIGGER sessions_end_delete;
-- An inserted or updated session exists, so the subquery has a row.
-- +goose StatementBegin
CREATE TRIGGER sessions_end_insert AFTER INSERT ON sessions BEGIN
    UPDATE conversations SET (session_ends_at, latest_session_id) = (SELECT ends_at, id FROM sessions
            WHERE conversation_id = NEW.conversation_id ORDER BY number DESC LIMIT 1)
     WHERE id = NEW.conversation_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER sessions_end_update AFTER UPDATE OF ends_at, number ON sessions BEGIN
    UPDATE conversations SET (session_ends_at, latest_session_id) = (SELECT ends_at, id FROM sessions
            WHERE conversation_id = NEW.conversation_id ORDER BY number DESC LIMIT 1)
     WHERE id = NEW.conversation_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER sessions_end_delete AFTER DELETE ON sessions BEGIN
    UPDATE conversations SET
           session_ends_at = coalesce((SELECT ends_at FROM sessions
                WHERE conversation_id = OLD.conversation_id ORDER BY number DESC LIMIT 1), 0),
           latest_session_id = coalesce((SELECT id FROM sessions
                WHERE conversation_id = OLD.conversation_id ORDER BY number DESC LIMIT 1), 0)
     WHERE id = OLD.conversation_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER sessions_end_insert;
DROP TRIGGER sessions_end_update;
DROP TRIGGER sessions_end_delete;
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
ALTER TABLE conversations DROP COLUMN latest_session_id;
