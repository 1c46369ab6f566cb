-- +goose Up
-- Two migrations are finished in Go at start-up, because SQL cannot do their
-- part: 00005's sessions take the rates of the flags or stored settings, and
-- 00016's contacts take their number formatted by the phone library. Both
-- looked for work at every start by reading every session and every contact:
-- 25 ms of a 66 ms cold start at 100k conversations, and 2 MB of page cache
-- kept for nothing. Each is recorded here once it found nothing left to do.
CREATE TABLE upgrades_done (
    name    TEXT PRIMARY KEY,
    done_at INTEGER NOT NULL
) WITHOUT ROWID;

-- +goose Down
DROP TABLE upgrades_done;
