-- +goose Up
-- S4 counts business messages in a row without a client message in between,
-- in the order the provider saw them. A client message the inbox learns of
-- late (Routee retried its webhook) but that the client sent before some of
-- the agents' replies is not "in between" them: those replies stay
-- unanswered, as they are for Viber, which would refuse a sixth. So a client
-- message resets the run to the counted business messages accepted after the
-- time it was sent (its sent_at, the provider's time). When nothing happened
-- in the conversation since then (its activity is older), that is none: the
-- common case costs no read.
DROP TRIGGER messages_count_insert;
-- +goose StatementBegin
CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN
    UPDATE sessions SET used = used + 1, media_used = media_used + (NEW.kind <> 'text')
     WHERE id = NEW.session_id AND NEW.direction = 'out' AND NEW.counted = 1;
    UPDATE conversations SET last_in_id = NEW.id,
           unanswered = CASE WHEN unanswered = 0 OR NEW.sent_at >= last_activity_at THEN 0
               ELSE (SELECT count(*) FROM messages m
                      WHERE m.conversation_id = NEW.conversation_id AND m.direction = 'out'
                        AND m.id > conversations.last_in_id AND m.counted = 1
                        AND m.created_at > NEW.sent_at) END,
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
           unread = unread + (NEW.id > last_read_message_id),
           last_message_id = NEW.id, last_activity_at = NEW.created_at
     WHERE id = NEW.conversation_id AND NEW.direction = 'in';
    UPDATE conversations SET unanswered = unanswered + 1
     WHERE id = NEW.conversation_id AND NEW.direction = 'out' AND NEW.counted = 1 AND NEW.id > last_in_id;
END;
-- +goose StatementEnd
