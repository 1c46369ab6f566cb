-- +goose NO TRANSACTION
-- +goose Up
-- A third role, lead: an agent who also reads the reports (issue 12). SQLite
-- cannot change a CHECK constraint in place, so the agents table is rebuilt
-- the documented way (sqlite.org/lang_altertable.html, "other kinds of table
-- schema changes"): foreign keys off outside the transaction, copy, swap,
-- check every reference, commit, foreign keys back on. Other tables keep
-- referring to "agents" by name, so they refer to the new table.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE agents_new (
    id         INTEGER PRIMARY KEY,
    login      TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('agent', 'lead', 'admin')),
    created_at INTEGER NOT NULL
);
INSERT INTO agents_new (id, login, name, role, created_at) SELECT id, login, name, role, created_at FROM agents;
DROP TABLE agents;
ALTER TABLE agents_new RENAME TO agents;
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
UPDATE agents SET role = 'agent' WHERE role = 'lead';
CREATE TABLE agents_old (
    id         INTEGER PRIMARY KEY,
    login      TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('agent', 'admin')),
    created_at INTEGER NOT NULL
);
INSERT INTO agents_old (id, login, name, role, created_at) SELECT id, login, name, role, created_at FROM agents;
DROP TABLE agents;
ALTER TABLE agents_old RENAME TO agents;
COMMIT;
PRAGMA foreign_keys = ON;
