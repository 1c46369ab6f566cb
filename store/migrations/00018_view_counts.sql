-- +goose Up
-- The sidebar's counts that do not depend on the time, kept by triggers in
-- the transaction that changes a conversation: how many conversations each
-- (status, assignee) has (0 for nobody), and how many of them wait on us by
-- the counters of 00010 (the client wrote last, nothing answered), whatever
-- their session's end. All, Mine and Unassigned are read from here; Closed
-- unanswered is the waiting ones minus those whose session is still open (a
-- short range of conversations_waiting).
CREATE TABLE view_counts (
    status      TEXT    NOT NULL,
    assignee_id INTEGER NOT NULL,
    total       INTEGER NOT NULL DEFAULT 0,
    waiting     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (status, assignee_id)
) WITHOUT ROWID;

INSERT INTO view_counts (status, assignee_id, total, waiting)
SELECT status, coalesce(assignee_id, 0), count(*), sum(last_in_id > 0 AND unanswered = 0)
  FROM conversations GROUP BY status, coalesce(assignee_id, 0);

-- +goose StatementBegin
CREATE TRIGGER view_counts_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO view_counts (status, assignee_id, total, waiting)
    VALUES (NEW.status, coalesce(NEW.assignee_id, 0), 1, NEW.last_in_id > 0 AND NEW.unanswered = 0)
    ON CONFLICT (status, assignee_id) DO UPDATE SET total = total + 1, waiting = waiting + excluded.waiting;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER view_counts_update AFTER UPDATE OF status, assignee_id, last_in_id, unanswered ON conversations
WHEN OLD.status IS NOT NEW.status OR OLD.assignee_id IS NOT NEW.assignee_id
  OR (OLD.last_in_id > 0 AND OLD.unanswered = 0) IS NOT (NEW.last_in_id > 0 AND NEW.unanswered = 0)
BEGIN
    UPDATE view_counts SET total = total - 1, waiting = waiting - (OLD.last_in_id > 0 AND OLD.unanswered = 0)
     WHERE status = OLD.status AND assignee_id = coalesce(OLD.assignee_id, 0);
    INSERT INTO view_counts (status, assignee_id, total, waiting)
    VALUES (NEW.status, coalesce(NEW.assignee_id, 0), 1, NEW.last_in_id > 0 AND NEW.unanswered = 0)
    ON CONFLICT (status, assignee_id) DO UPDATE SET total = total + 1, waiting = waiting + excluded.waiting;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER view_counts_delete AFTER DELETE ON conversations BEGIN
    UPDATE view_counts SET total = total - 1, waiting = waiting - (OLD.last_in_id > 0 AND OLD.unanswered = 0)
     WHERE status = OLD.status AND assignee_id = coalesce(OLD.assignee_id, 0);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER view_counts_delete;
DROP TRIGGER view_counts_update;
DROP TRIGGER view_counts_insert;
DROP TABLE view_counts;
