-- +goose Up
-- The reports read every session of a range (a month: up to 100k rows). From
-- the table those rows are scattered over the whole file, interleaved with
-- the messages; this index holds every column the reports read, in start
-- order, so a report reads a contiguous run of index pages and never the
-- table (measured on 100k sessions: a scan 470 ms -> 70 ms). The price is
-- one more index entry rewritten when a send or a price changes the session.
CREATE INDEX sessions_report ON sessions (started_at, opened_by, used, media_used, ends_at,
    last_in_id, last_out_id, peak_unanswered, first_agent_id, country, rate_text, rate_media,
    rate_message, reported_count, reported_cost, first_out_at, received_at, conversation_id);

-- +goose Down
DROP INDEX sessions_report;
