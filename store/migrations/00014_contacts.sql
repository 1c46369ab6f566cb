-- +goose Up
-- What agents keep about a client beside what Viber tells: an email, an id in
-- another system (an order, a CRM record), tags and a free note. Tags are a
-- JSON array of strings. name_set_by_agent is 1 once an agent named the
-- client: the display name Viber sends with each message then no longer
-- replaces it.
ALTER TABLE contacts ADD COLUMN email             TEXT    NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN external_id       TEXT    NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN tags              TEXT    NOT NULL DEFAULT '[]';
ALTER TABLE contacts ADD COLUMN note              TEXT    NOT NULL DEFAULT '';
ALTER TABLE contacts ADD COLUMN name_set_by_agent INTEGER NOT NULL DEFAULT 0 CHECK (name_set_by_agent IN (0, 1));
ALTER TABLE contacts ADD COLUMN updated_at        INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE contacts DROP COLUMN updated_at;
ALTER TABLE contacts DROP COLUMN name_set_by_agent;
ALTER TABLE contacts DROP COLUMN note;
ALTER TABLE contacts DROP COLUMN tags;
ALTER TABLE contacts DROP COLUMN external_id;
ALTER TABLE contacts DROP COLUMN email;
