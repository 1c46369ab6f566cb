-- +goose Up
-- Each agent's notification settings. No row means the defaults: no sound,
-- no desktop notifications (an inbox that beeps unasked is switched off).
CREATE TABLE agent_prefs (
    agent_id   INTEGER PRIMARY KEY REFERENCES agents (id),
    sound      INTEGER NOT NULL DEFAULT 0 CHECK (sound IN (0, 1)),
    desktop    INTEGER NOT NULL DEFAULT 0 CHECK (desktop IN (0, 1)),
    updated_at INTEGER NOT NULL
);

-- When the agent was reminded that this session was about to close with the
-- client's last message unanswered: a session is reminded once, whatever the
-- number of restarts or workers.
ALTER TABLE sessions ADD COLUMN reminded_at INTEGER;
-- The reminder worker looks for open sessions by their end, the latest
-- session of each conversation only; those not reminded yet are few.
CREATE INDEX sessions_to_remind ON sessions (ends_at) WHERE reminded_at IS NULL;

-- +goose Down
DROP INDEX sessions_to_remind;
ALTER TABLE sessions DROP COLUMN reminded_at;
DROP TABLE agent_prefs;
