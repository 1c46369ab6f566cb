-- +goose Up
-- Every page load and every live batch counts what is unread in the views:
-- the 500 most recently active open unassigned conversations and the
-- agent's own, by the client's newest message against the read mark. With
-- only the order in the index each of them cost a read of its conversation
-- row (500 of them, about a third of that count's time); with the two marks
-- beside it the count reads the index alone. The price: a client message
-- already rewrites its entry (last_activity_at), and the shared mark moves
-- it when an agent without a mark of their own reads.
DROP INDEX conversations_by_status_assignee;
CREATE INDEX conversations_by_status_assignee
    ON conversations (status, assignee_id, last_activity_at DESC, id DESC, last_in_id, last_read_message_id);

-- +goose Down
DROP INDEX conversations_by_status_assignee;
CREATE INDEX conversations_by_status_assignee
    ON conversations (status, assignee_id, last_activity_at DESC, id DESC);
