-- +goose Up
-- The reports (issue 12) read one row per session of their range, and at
-- 100k sessions SQLite's own work on those rows (the grouping's sort and the
-- sums, about 1–4 µs a row) was most of the page's half second. A day whose
-- sessions have all ended hardly changes afterwards, so its sessions' facts
-- are kept here, one compact record per session (store/reportdays.go), by UTC
-- day (started_at / 86400000), built in the background. A report decodes the
-- kept days and reads only the others from the sessions. Any change to a
-- session of a kept day (a price reported late, a release) drops that day in
-- the same transaction, so a kept day is always what the sessions say; it is
-- built again later.
-- format is the encoding's version: a day of another one is read from the
-- sessions and built again (a column of its own, so that finding the days to
-- build reads no blob).
CREATE TABLE report_session_days (
    day    INTEGER PRIMARY KEY,
    format INTEGER NOT NULL,
    facts  BLOB    NOT NULL
);

-- +goose StatementBegin
CREATE TRIGGER sessions_report_days_insert AFTER INSERT ON sessions BEGIN
    DELETE FROM report_session_days WHERE day = NEW.started_at / 86400000;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER sessions_report_days_update AFTER UPDATE ON sessions BEGIN
    DELETE FROM report_session_days WHERE day IN (OLD.started_at / 86400000, NEW.started_at / 86400000);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER sessions_report_days_delete AFTER DELETE ON sessions BEGIN
    DELETE FROM report_session_days WHERE day = OLD.started_at / 86400000;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER sessions_report_days_delete;
DROP TRIGGER sessions_report_days_update;
DROP TRIGGER sessions_report_days_insert;
DROP TABLE report_session_days;
