-- +goose Up
-- Every page counts Expiring and Locked: the open sessions (those ending in
-- the next day) by how many replies went unanswered and the conversation's
-- status. With only the end in the index each of them cost a read of its
-- conversation row (about 0.3 ms at 2,600 open sessions); with the two
-- columns beside it the count reads the index alone. The price is one more
-- index entry rewritten when a send or a client message changes the
-- unanswered run, next to the row write that change makes anyway.
DROP INDEX conversations_by_end;
CREATE INDEX conversations_by_end ON conversations (session_ends_at, unanswered, status, id);

-- +goose Down
DROP INDEX conversations_by_end;
CREATE INDEX conversations_by_end ON conversations (session_ends_at, id);
