-- +goose Up
-- The counts the list and the session panel need, kept up to date by triggers
-- in the same transaction as the message change that moves them, so that no
-- read counts messages and no code path (a send, a release, a resend, a
-- session undone) can forget to keep them. TestCountersMatchTheMessages checks
-- them against a recount after every step of random traffic.

-- Business messages that count in the session (S3), and of those how many
-- carry an image or a file (S7: the session is then billed the media rate).
ALTER TABLE sessions ADD COLUMN used       INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN media_used INTEGER NOT NULL DEFAULT 0;
-- The client's newest message; counting business messages after it gives the
-- unanswered run (S4), kept in unanswered. unread counts the client's messages
-- after the read marker.
ALTER TABLE conversations ADD COLUMN last_in_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN unanswered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN unread     INTEGER NOT NULL DEFAULT 0;

UPDATE sessions SET
    used       = (SELECT count(*) FROM messages m
                   WHERE m.session_id = sessions.id AND m.direction = 'out' AND m.counted = 1),
    media_used = (SELECT count(*) FROM messages m
                   WHERE m.session_id = sessions.id AND m.direction = 'out' AND m.counted = 1 AND m.kind <> 'text');
UPDATE conversations SET last_in_id = coalesce((SELECT max(id) FROM messages m
    WHERE m.conversation_id = conversations.id AND m.direction = 'in'), 0);
UPDATE conversations SET
    unanswered = (SELECT count(*) FROM messages m
                   WHERE m.conversation_id = conversations.id AND m.direction = 'out' AND m.counted = 1
                     AND m.id > conversations.last_in_id),
    unread     = (SELECT count(*) FROM messages m
                   WHERE m.conversation_id = conversations.id AND m.direction = 'in'
                     AND m.id > conversations.last_read_message_id);

-- +goose StatementBegin
CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN
    UPDATE sessions SET used = used + 1, media_used = media_used + (NEW.kind <> 'text')
     WHERE id = NEW.session_id AND NEW.direction = 'out' AND NEW.counted = 1;
    -- A client message resets the unanswered run (S4); ids only grow, so it is the newest.
    UPDATE conversations SET last_in_id = NEW.id, unanswered = 0,
           unread = unread + (NEW.id > last_read_message_id)
     WHERE id = NEW.conversation_id AND NEW.direction = 'in';
    UPDATE conversations SET unanswered = unanswered + 1
     WHERE id = NEW.conversation_id AND NEW.direction = 'out' AND NEW.counted = 1 AND NEW.id > last_in_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER messages_count_update AFTER UPDATE OF counted, session_id, kind, direction ON messages
WHEN OLD.counted <> NEW.counted OR OLD.session_id <> NEW.session_id OR OLD.kind <> NEW.kind
     OR OLD.direction <> NEW.direction
BEGIN
    UPDATE sessions SET used = used - 1, media_used = media_used - (OLD.kind <> 'text')
     WHERE id = OLD.session_id AND OLD.direction = 'out' AND OLD.counted = 1;
    UPDATE sessions SET used = used + 1, media_used = media_used + (NEW.kind <> 'text')
     WHERE id = NEW.session_id AND NEW.direction = 'out' AND NEW.counted = 1;
    UPDATE conversations
       SET unanswered = unanswered - (OLD.direction = 'out' AND OLD.counted = 1)
                                   + (NEW.direction = 'out' AND NEW.counted = 1)
     WHERE id = NEW.conversation_id AND NEW.id > last_in_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN
    UPDATE sessions SET used = used - 1, media_used = media_used - (OLD.kind <> 'text')
     WHERE id = OLD.session_id AND OLD.direction = 'out' AND OLD.counted = 1;
    UPDATE conversations SET unanswered = unanswered - 1
     WHERE id = OLD.conversation_id AND OLD.direction = 'out' AND OLD.counted = 1 AND OLD.id > last_in_id;
    -- Removing a client message is rare (never done by the inbox today): recount.
    UPDATE conversations SET last_in_id = coalesce((SELECT max(id) FROM messages m
            WHERE m.conversation_id = conversations.id AND m.direction = 'in'), 0)
     WHERE id = OLD.conversation_id AND OLD.direction = 'in';
    UPDATE conversations SET
           unanswered = (SELECT count(*) FROM messages m
                          WHERE m.conversation_id = conversations.id AND m.direction = 'out' AND m.counted = 1
                            AND m.id > conversations.last_in_id),
           unread = (SELECT count(*) FROM messages m
                      WHERE m.conversation_id = conversations.id AND m.direction = 'in'
                        AND m.id > conversations.last_read_message_id)
     WHERE id = OLD.conversation_id AND OLD.direction = 'in';
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER conversations_count_unread AFTER UPDATE OF last_read_message_id ON conversations
WHEN OLD.last_read_message_id <> NEW.last_read_message_id
BEGIN
    UPDATE conversations SET unread = (SELECT count(*) FROM messages m
            WHERE m.conversation_id = NEW.id AND m.direction = 'in' AND m.id > NEW.last_read_message_id)
     WHERE id = NEW.id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER conversations_count_unread;
DROP TRIGGER messages_count_delete;
DROP TRIGGER messages_count_update;
DROP TRIGGER messages_count_insert;
ALTER TABLE conversations DROP COLUMN unread;
ALTER TABLE conversations DROP COLUMN unanswered;
ALTER TABLE conversations DROP COLUMN last_in_id;
ALTER TABLE sessions DROP COLUMN media_used;
ALTER TABLE sessions DROP COLUMN used;
