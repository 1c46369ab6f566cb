-- +goose Up
-- A client message is its conversation's newest message (ids only grow): the
-- trigger that resets the unanswered run now also records it as the newest
-- and moves the conversation's activity, which ReceiveClientMessage did in a
-- second UPDATE of the same row. Each UPDATE of a conversation rewrites its
-- row and its entries in the list's orders (by activity, by status and
-- assignee, by session end): one statement instead of two per client
-- message (issue 10: the writer is what caps ingest).
DROP TRIGGER messages_count_insert;
-- +goose StatementBegin
CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN
    UPDATE sessions SET used = used + 1, media_used = media_used + (NEW.kind <> 'text')
     WHERE id = NEW.session_id AND NEW.direction = 'out' AND NEW.counted = 1;
    -- A client message resets the unanswered run (S4); ids only grow, so it is the newest.
    UPDATE conversations SET last_in_id = NEW.id, unanswered = 0,
           unread = unread + (NEW.id > last_read_message_id),
           last_message_id = NEW.id, last_activity_at = NEW.created_at
     WHERE id = NEW.conversation_id AND NEW.direction = 'in';
    UPDATE conversations SET unanswered = unanswered + 1
     WHERE id = NEW.conversation_id AND NEW.direction = 'out' AND NEW.counted = 1 AND NEW.id > last_in_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER messages_count_insert;
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
