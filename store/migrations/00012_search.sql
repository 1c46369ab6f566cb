-- +goose Up
-- Full-text search over message text and over contacts (names and phone
-- digits).
--
-- FTS4, not FTS5: the SQLite that github.com/mattn/go-sqlite3 compiles has
-- FTS3/FTS4 by default (SQLITE_ENABLE_FTS3 in its cgo flags) but builds FTS5
-- only under the sqlite_fts5 build tag, and the project builds and tests with
-- plain `go run .` and `go test ./...`. FTS4 gives what search needs: the
-- unicode61 tokenizer folds case and diacritics ("cafe" finds "café") for Latin
-- and Cyrillic alike, prefix indexes serve "word*" queries, and snippet()
-- marks the match.

-- messages_fts indexes messages.body without a second copy of it (external
-- content): the text stays in messages, and the triggers below keep the index
-- in step with every insert, body change and delete in the same transaction.
-- order=DESC stores each term's list of messages newest first, which is the
-- order search reads them in. prefix="2,3" keeps short prefixes (the first
-- letters a person types) cheap.
CREATE VIRTUAL TABLE messages_fts USING fts4(
    content="messages", body,
    tokenize=unicode61 "remove_diacritics=2",
    prefix="2,3", order=DESC
);

-- An external-content FTS4 table reads the row's current text to remove its
-- terms, so the old entry goes before the row changes or goes.
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

-- The messages stored before this migration.
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');

-- contacts_fts holds each contact's name and, in digits, every suffix of the
-- phone number's digits ("375298603938 75298603938 … 938"), so that a prefix
-- query on it finds the digits anywhere in the number: the whole number typed
-- in any format ("+375 29 860-39-38", "375298603938"), its start, or its last
-- digits ("860-39-38"). E.164 has at most 15 digits. It keeps its own copy of
-- that text (contacts are few and small); docid is the contact's id.
CREATE VIRTUAL TABLE contacts_fts USING fts4(
    name, digits,
    tokenize=unicode61 "remove_diacritics=2",
    prefix="2,3"
);

-- +goose StatementBegin
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts (docid, name, digits) VALUES (NEW.id, NEW.name,
        (SELECT trim(substr(d, 1) || ' ' || substr(d, 2) || ' ' || substr(d, 3) || ' ' || substr(d, 4) || ' ' ||
                     substr(d, 5) || ' ' || substr(d, 6) || ' ' || substr(d, 7) || ' ' || substr(d, 8) || ' ' ||
                     substr(d, 9) || ' ' || substr(d, 10) || ' ' || substr(d, 11) || ' ' || substr(d, 12) || ' ' ||
                     substr(d, 13) || ' ' || substr(d, 14) || ' ' || substr(d, 15))
           FROM (SELECT ltrim(NEW.phone, '+') AS d)));
END;
-- +goose StatementEnd
-- +goose StatementBegin
-- Every client message re-saves its contact (upsertContact): only a change
-- of name or number touches the index.
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF name, phone ON contacts
WHEN OLD.name IS NOT NEW.name OR OLD.phone IS NOT NEW.phone
BEGIN
    UPDATE contacts_fts SET name = NEW.name,
        digits = (SELECT trim(substr(d, 1) || ' ' || substr(d, 2) || ' ' || substr(d, 3) || ' ' || substr(d, 4) || ' ' ||
                     substr(d, 5) || ' ' || substr(d, 6) || ' ' || substr(d, 7) || ' ' || substr(d, 8) || ' ' ||
                     substr(d, 9) || ' ' || substr(d, 10) || ' ' || substr(d, 11) || ' ' || substr(d, 12) || ' ' ||
                     substr(d, 13) || ' ' || substr(d, 14) || ' ' || substr(d, 15))
           FROM (SELECT ltrim(NEW.phone, '+') AS d))
     WHERE docid = NEW.id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    DELETE FROM contacts_fts WHERE docid = OLD.id;
END;
-- +goose StatementEnd

INSERT INTO contacts_fts (docid, name, digits)
SELECT id, name,
       trim(substr(d, 1) || ' ' || substr(d, 2) || ' ' || substr(d, 3) || ' ' || substr(d, 4) || ' ' ||
            substr(d, 5) || ' ' || substr(d, 6) || ' ' || substr(d, 7) || ' ' || substr(d, 8) || ' ' ||
            substr(d, 9) || ' ' || substr(d, 10) || ' ' || substr(d, 11) || ' ' || substr(d, 12) || ' ' ||
            substr(d, 13) || ' ' || substr(d, 14) || ' ' || substr(d, 15))
  FROM (SELECT id, name, ltrim(phone, '+') AS d FROM contacts);

-- +goose Down
DROP TRIGGER contacts_fts_delete;
DROP TRIGGER contacts_fts_update;
DROP TRIGGER contacts_fts_insert;
DROP TABLE contacts_fts;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_after_update;
DROP TRIGGER messages_fts_before_update;
DROP TRIGGER messages_fts_insert;
DROP TABLE messages_fts;
