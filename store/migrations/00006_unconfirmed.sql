-- +goose Up
-- A business message whose hand-over to the provider may or may not have
-- worked (a timeout or a 5xx after the request was written, a crash in the
-- middle of a send) is 'unconfirmed' until a lookup at the provider or an
-- agent settles it; it is never sent again silently.
--
-- tried_at: when the outbox began its latest try to hand the message over; 0
-- when no try is open. A queued message with tried_at set is one whose outcome
-- was never recorded (the process stopped, or recording failed): it is looked
-- up before anything is sent again.
ALTER TABLE messages ADD COLUMN tried_at INTEGER NOT NULL DEFAULT 0;
-- checks: lookups at the provider made for an unconfirmed message so far.
ALTER TABLE messages ADD COLUMN checks   INTEGER NOT NULL DEFAULT 0;
-- checking: 1 while the outbox still looks an unconfirmed message up (at
-- next_attempt_at); 0 once it waits for an agent to settle it.
ALTER TABLE messages ADD COLUMN checking INTEGER NOT NULL DEFAULT 0 CHECK (checking IN (0, 1));
CREATE INDEX messages_unconfirmed ON messages (id) WHERE status = 'unconfirmed';

-- +goose Down
DROP INDEX messages_unconfirmed;
ALTER TABLE messages DROP COLUMN checking;
ALTER TABLE messages DROP COLUMN checks;
ALTER TABLE messages DROP COLUMN tried_at;
