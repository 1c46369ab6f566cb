-- +goose Up
-- The reconcile job looks for business messages stuck in sent longer than
-- their ttl: this partial index keeps that a short range scan.
CREATE INDEX messages_sent_since ON messages (status_at) WHERE status = 'sent';

-- +goose Down
DROP INDEX messages_sent_since;
