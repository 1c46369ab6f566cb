-- +goose Up
-- The messages' full-text index moves out of this database into a file of
-- its own, kept by an indexer beside the writer (store/searchindex.go).
--
-- Why: FTS4 merges its segments inside the transaction that adds the 16th of
-- a level, and at a million messages a merge that reaches the large segments
-- took up to 1.1 s, during which every webhook and every send waited for the
-- one writer. It also flushes its pending terms at every SAVEPOINT, and the
-- group commit puts each request in one: a new segment per message, so the
-- merges came often. In a file of its own the index has its own writer and
-- its merges block no one; its batches of messages make few segments.
--
-- instance names this database, so that an index file made for another one
-- (a database copied in, a backup restored) is seen for what it is and built
-- again rather than trusted.
CREATE TABLE instance (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT NOT NULL
);
INSERT INTO instance (id, token) VALUES (1, lower(hex(randomblob(16))));

-- The messages whose text changed or that went since the index saw them
-- (no code path does either today; the index must not be what breaks when one
-- does). New messages need no row: the indexer follows messages.id.
CREATE TABLE search_changes (
    id         INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL
);

-- +goose StatementBegin
CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages
WHEN OLD.body IS NOT NEW.body
BEGIN
    INSERT INTO search_changes (message_id) VALUES (NEW.id);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO search_changes (message_id) VALUES (OLD.id);
END;
-- +goose StatementEnd

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_before_update;
DROP TRIGGER messages_fts_after_update;
DROP TRIGGER messages_fts_delete;
DROP TABLE messages_fts;

-- +goose Down
CREATE VIRTUAL TABLE messages_fts USING fts4(
    content="messages", body,
    tokenize=unicode61 "remove_diacritics=2",
    prefix="2,3", order=DESC
);
-- +goose StatementBegin
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (docid, body) VALUES (NEW.id, NEW.body);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER messages_fts_before_update BEFORE UPDATE OF body ON messages BEGIN
    DELETE FROM messages_fts WHERE docid = OLD.id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER messages_fts_after_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_fts (docid, body) VALUES (NEW.id, NEW.body);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER messages_fts_delete BEFORE DELETE ON messages BEGIN
    DELETE FROM messages_fts WHERE docid = OLD.id;
END;
-- +goose StatementEnd
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
DROP TRIGGER messages_search_delete;
DROP TRIGGER messages_search_update;
DROP TABLE search_changes;
DROP TABLE instance;
