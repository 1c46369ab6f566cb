-- +goose Up
-- What Routee reported a business message cost (the "price" of its status
-- callback), and what a session was billed at beyond the two rates of 00005.

-- The price as reported: NULL until a status callback carries one. A repeated
-- callback sets the same value again, so nothing is counted twice.
-- price_currency is the currency the callback named, or the session's frozen
-- currency when it named none (Routee bills in the account's currency).
-- price_counted is 1 when the price is in the session's currency and so is
-- summed into sessions.reported_cost; a price in another currency is kept on
-- the message but never added to a sum in a different currency.
ALTER TABLE messages ADD COLUMN price          REAL;
ALTER TABLE messages ADD COLUMN price_currency TEXT    NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN price_country  TEXT    NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN price_at       INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN price_counted  INTEGER NOT NULL DEFAULT 0 CHECK (price_counted IN (0, 1));

-- Frozen with rate_text/rate_media/currency when the session is first billed
-- (S7): the client's country then (ISO 3166, '' when unknown), the moment, and
-- the per-message rate when the client was international and one was set
-- (NULL: the session rates apply).
ALTER TABLE sessions ADD COLUMN country      TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN billed_at    INTEGER;
ALTER TABLE sessions ADD COLUMN rate_message REAL;
-- Kept by the triggers below in the transaction that changes a price: the sum
-- of the prices in the session's currency, how many of its messages have one,
-- and how many were priced in another currency (not in the sum).
ALTER TABLE sessions ADD COLUMN reported_cost    REAL    NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN reported_count   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN reported_foreign INTEGER NOT NULL DEFAULT 0;

-- Sessions by the moment they were billed: the exports and reports read a
-- date range of them.
CREATE INDEX sessions_by_billed ON sessions (billed_at, id) WHERE billed_at IS NOT NULL;
CREATE INDEX sessions_by_started ON sessions (started_at, id);

-- Billed sessions from before this migration: billed when their first
-- business message was accepted; the country is the contact's.
UPDATE sessions SET
    billed_at = (SELECT min(created_at) FROM messages m
                  WHERE m.session_id = sessions.id AND m.direction = 'out' AND m.counted = 1),
    country = coalesce((SELECT ct.country FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
                         WHERE c.id = sessions.conversation_id), '')
WHERE rate_text IS NOT NULL;

-- +goose StatementBegin
CREATE TRIGGER messages_price_update AFTER UPDATE OF price, price_counted, session_id ON messages
WHEN OLD.price IS NOT NEW.price OR OLD.price_counted <> NEW.price_counted OR OLD.session_id <> NEW.session_id
BEGIN
    UPDATE sessions SET reported_cost = reported_cost - OLD.price * OLD.price_counted,
                        reported_count = reported_count - 1,
                        reported_foreign = reported_foreign - (1 - OLD.price_counted)
     WHERE id = OLD.session_id AND OLD.price IS NOT NULL;
    UPDATE sessions SET reported_cost = reported_cost + NEW.price * NEW.price_counted,
                        reported_count = reported_count + 1,
                        reported_foreign = reported_foreign + (1 - NEW.price_counted)
     WHERE id = NEW.session_id AND NEW.price IS NOT NULL;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER messages_price_delete AFTER DELETE ON messages WHEN OLD.price IS NOT NULL BEGIN
    UPDATE sessions SET reported_cost = reported_cost - OLD.price * OLD.price_counted,
                        reported_count = reported_count - 1,
                        reported_foreign = reported_foreign - (1 - OLD.price_counted)
     WHERE id = OLD.session_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER messages_price_insert AFTER INSERT ON messages WHEN NEW.price IS NOT NULL BEGIN
    UPDATE sessions SET reported_cost = reported_cost + NEW.price * NEW.price_counted,
                        reported_count = reported_count + 1,
                        reported_foreign = reported_foreign + (1 - NEW.price_counted)
     WHERE id = NEW.session_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER messages_price_insert;
DROP TRIGGER messages_price_delete;
DROP TRIGGER messages_price_update;
DROP INDEX sessions_by_started;
DROP INDEX sessions_by_billed;
ALTER TABLE sessions DROP COLUMN reported_foreign;
ALTER TABLE sessions DROP COLUMN reported_count;
ALTER TABLE sessions DROP COLUMN reported_cost;
ALTER TABLE sessions DROP COLUMN rate_message;
ALTER TABLE sessions DROP COLUMN billed_at;
ALTER TABLE sessions DROP COLUMN country;
ALTER TABLE messages DROP COLUMN price_counted;
ALTER TABLE messages DROP COLUMN price_at;
ALTER TABLE messages DROP COLUMN price_country;
ALTER TABLE messages DROP COLUMN price_currency;
ALTER TABLE messages DROP COLUMN price;
