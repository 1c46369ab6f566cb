-- +goose Up
-- Two indexes that every client message wrote to and that nothing needs any
-- more (issue 10: a client message wrote about 23 pages to the WAL, and the
-- writer is what caps ingest).
--
-- messages_by_direction (conversation_id, direction, id): every message put
-- an entry on a random page of it. Its queries (a conversation's newest
-- client message before an id, the unread count after a read mark, the
-- triggers' runs since the client last wrote) read a short range of one
-- conversation's messages, which messages_by_conversation (conversation_id,
-- id) serves as well: the rows it reads are the range's, direction tested on
-- each. The newest client message itself is kept on the conversation
-- (last_in_id).
--
-- sessions_report: a covering index of 18 of a session's columns, rewritten
-- by every message of the session (used, last_in_id, last_out_id...). Since
-- 00049 the reports read the days that are over from report_session_days,
-- and only the current days from the sessions, through sessions_by_started
-- (their rows are recent, so near each other in the file).
DROP INDEX messages_by_direction;
DROP INDEX sessions_report;

-- +goose Down
CREATE INDEX sessions_report ON sessions (started_at, opened_by, used, media_used, ends_at,
    last_in_id, last_out_id, peak_unanswered, first_agent_id, country, rate_text, rate_media,
    rate_message, reported_count, reported_cost, first_out_at, received_at, conversation_id);
CREATE INDEX messages_by_direction ON messages (conversation_id, direction, id);
