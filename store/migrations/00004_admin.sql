-- +goose Up
-- API tokens for integrations: the JSON API's alternative to the SSO proxy.
-- Only the SHA-256 of the secret is kept; prefix is its first characters, not
-- secret, to tell tokens apart. Each token acts through its own agents row
-- (login 'token:<id>'), so its sends carry a name like any agent's.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    hash         TEXT    NOT NULL UNIQUE, -- hex SHA-256 of the whole secret
    role         TEXT    NOT NULL DEFAULT 'agent' CHECK (role IN ('agent')),
    agent_id     INTEGER UNIQUE REFERENCES agents (id),
    created_by   INTEGER REFERENCES agents (id),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0, -- refreshed at most once a minute
    revoked_at   INTEGER NOT NULL DEFAULT 0, -- 0 while the token works
    revoked_by   INTEGER REFERENCES agents (id)
);

-- Append-only: who did what and when. Rows are written in the same transaction
-- as the change they describe; the triggers refuse any later edit.
CREATE TABLE audit (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    agent_id        INTEGER REFERENCES agents (id),     -- NULL: the system
    token_id        INTEGER REFERENCES api_tokens (id), -- the API token that acted, if one did
    action          TEXT    NOT NULL,
    conversation_id INTEGER REFERENCES conversations (id),
    message_id      INTEGER REFERENCES messages (id),
    detail          TEXT    NOT NULL DEFAULT '' -- JSON: what changed
);
CREATE INDEX audit_by_action ON audit (action, id);
CREATE INDEX audit_by_agent ON audit (agent_id, id);
CREATE INDEX audit_by_time ON audit (at);

-- +goose StatementBegin
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
-- +goose StatementEnd

-- Settings admins change at run time, one row per key, the value as JSON. They
-- override the flags' defaults when the inbox starts.
CREATE TABLE settings (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by INTEGER REFERENCES agents (id)
);

-- +goose Down
DROP TABLE settings;
DROP TRIGGER audit_no_delete;
DROP TRIGGER audit_no_update;
DROP TABLE audit;
DROP TABLE api_tokens;
