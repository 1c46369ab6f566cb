-- +goose Up
-- The spend of each calendar month (UTC) by currency, kept by triggers on
-- sessions in the transaction that changes a session: the header shows it on
-- every admin page, and summing the month's sessions there would read every
-- one of them (about 100 ms at 100,000 sessions a month).
--
-- A session counts in the month it was first billed (billed_at), for what
-- store.SpendSQL says: its reported cost once the provider priced any of its
-- messages, else its estimate at the frozen rates.
CREATE TABLE spend_months (
    month    TEXT    NOT NULL, -- YYYY-MM, UTC
    currency TEXT    NOT NULL,
    amount   REAL    NOT NULL DEFAULT 0,
    sessions INTEGER NOT NULL DEFAULT 0, -- billed sessions
    reported INTEGER NOT NULL DEFAULT 0, -- of which priced by the provider
    PRIMARY KEY (month, currency)
);

INSERT INTO spend_months (month, currency, amount, sessions, reported)
SELECT strftime('%Y-%m', billed_at / 1000, 'unixepoch'), currency,
       sum(CASE WHEN reported_count > 0 THEN reported_cost
                WHEN used = 0 OR rate_text IS NULL THEN 0
                WHEN rate_message IS NOT NULL THEN used * rate_message
                WHEN media_used > 0 THEN rate_media ELSE rate_text END),
       count(*), count(CASE WHEN reported_count > 0 THEN 1 END)
FROM sessions WHERE billed_at IS NOT NULL AND currency IS NOT NULL
GROUP BY 1, 2;

-- +goose StatementBegin
CREATE TRIGGER sessions_spend_update AFTER UPDATE OF used, media_used, rate_text, rate_media, rate_message, currency,
    billed_at, reported_cost, reported_count ON sessions
BEGIN
    UPDATE spend_months SET
        amount = amount - (CASE WHEN OLD.reported_count > 0 THEN OLD.reported_cost
                                WHEN OLD.used = 0 OR OLD.rate_text IS NULL THEN 0
                                WHEN OLD.rate_message IS NOT NULL THEN OLD.used * OLD.rate_message
                                WHEN OLD.media_used > 0 THEN OLD.rate_media ELSE OLD.rate_text END),
        sessions = sessions - 1,
        reported = reported - (OLD.reported_count > 0)
     WHERE OLD.billed_at IS NOT NULL AND OLD.currency IS NOT NULL
       AND month = strftime('%Y-%m', OLD.billed_at / 1000, 'unixepoch') AND currency = OLD.currency;
    INSERT INTO spend_months (month, currency, amount, sessions, reported)
    SELECT strftime('%Y-%m', NEW.billed_at / 1000, 'unixepoch'), NEW.currency,
           CASE WHEN NEW.reported_count > 0 THEN NEW.reported_cost
                WHEN NEW.used = 0 OR NEW.rate_text IS NULL THEN 0
                WHEN NEW.rate_message IS NOT NULL THEN NEW.used * NEW.rate_message
                WHEN NEW.media_used > 0 THEN NEW.rate_media ELSE NEW.rate_text END,
           1, NEW.reported_count > 0
     WHERE NEW.billed_at IS NOT NULL AND NEW.currency IS NOT NULL
    ON CONFLICT (month, currency) DO UPDATE SET amount = amount + excluded.amount,
        sessions = sessions + 1, reported = reported + excluded.reported;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER sessions_spend_delete AFTER DELETE ON sessions
WHEN OLD.billed_at IS NOT NULL AND OLD.currency IS NOT NULL
BEGIN
    UPDATE spend_months SET
        amount = amount - (CASE WHEN OLD.reported_count > 0 THEN OLD.reported_cost
                                WHEN OLD.used = 0 OR OLD.rate_text IS NULL THEN 0
                                WHEN OLD.rate_message IS NOT NULL THEN OLD.used * OLD.rate_message
                                WHEN OLD.media_used > 0 THEN OLD.rate_media ELSE OLD.rate_text END),
        sessions = sessions - 1,
        reported = reported - (OLD.reported_count > 0)
     WHERE month = strftime('%Y-%m', OLD.billed_at / 1000, 'unixepoch') AND currency = OLD.currency;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER sessions_spend_insert AFTER INSERT ON sessions
WHEN NEW.billed_at IS NOT NULL AND NEW.currency IS NOT NULL
BEGIN
    INSERT INTO spend_months (month, currency, amount, sessions, reported)
    SELECT strftime('%Y-%m', NEW.billed_at / 1000, 'unixepoch'), NEW.currency,
           CASE WHEN NEW.reported_count > 0 THEN NEW.reported_cost
                WHEN NEW.used = 0 OR NEW.rate_text IS NULL THEN 0
                WHEN NEW.rate_message IS NOT NULL THEN NEW.used * NEW.rate_message
                WHEN NEW.media_used > 0 THEN NEW.rate_media ELSE NEW.rate_text END,
           1, NEW.reported_count > 0
     WHERE true
    ON CONFLICT (month, currency) DO UPDATE SET amount = amount + excluded.amount,
        sessions = sessions + 1, reported = reported + excluded.reported;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER sessions_spend_insert;
DROP TRIGGER sessions_spend_delete;
DROP TRIGGER sessions_spend_update;
DROP TABLE spend_months;
