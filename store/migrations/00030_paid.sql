-- +goose Up
-- Paid messages (issue 13): business messages sent outside a session, billed
-- per message. A paid message is a row of messages like any other (it goes
-- through the same outbox and shows in the thread) with counted = 0, so the
-- session counters and rules (S3, S4) never see it, plus one row here that
-- says how it goes out and what it costs. It sits in the conversation's latest
-- session only because every message has one; it never opens one.
CREATE TABLE paid_messages (
    message_id     INTEGER PRIMARY KEY REFERENCES messages (id),
    -- viber: POST /viber without isSessionMessage; failover: POST /failover
    -- (Viber, then SMS); sms: SMS only.
    route          TEXT    NOT NULL CHECK (route IN ('viber', 'failover', 'sms')),
    promotional    INTEGER NOT NULL DEFAULT 0 CHECK (promotional IN (0, 1)),
    image_url      TEXT    NOT NULL DEFAULT '',
    button_caption TEXT    NOT NULL DEFAULT '',
    button_url     TEXT    NOT NULL DEFAULT '',
    -- The SMS sender name or number in force when it was accepted.
    sms_from       TEXT    NOT NULL DEFAULT '',
    -- What the agent confirmed: the per-message rate for the client's country.
    quoted_price   REAL    NOT NULL,
    currency       TEXT    NOT NULL,
    template_id    INTEGER,
    -- What the provider reported: the channel that finally carried it (viber
    -- or sms) and the price (failover: the total of its steps). NULL: not yet.
    final_channel  TEXT    NOT NULL DEFAULT '',
    price          REAL
);

-- A client's reply that names (referenceTrackingId) the paid message it answers.
ALTER TABLE messages ADD COLUMN reply_to INTEGER REFERENCES messages (id);

-- What delivery reports said about a client. One row per flag; cleared rows
-- are deleted (the audit log keeps who cleared it and why).
CREATE TABLE contact_flags (
    contact_id INTEGER NOT NULL REFERENCES contacts (id),
    flag       TEXT    NOT NULL CHECK (flag IN ('not_viber_user', 'blocked', 'opted_out', 'no_suitable_device')),
    reason     TEXT    NOT NULL DEFAULT '',
    message_id INTEGER REFERENCES messages (id),
    set_at     INTEGER NOT NULL,
    PRIMARY KEY (contact_id, flag)
);

-- Approved texts for paid messages.
CREATE TABLE paid_templates (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1))
);

-- +goose Down
DROP TABLE paid_templates;
DROP TABLE contact_flags;
ALTER TABLE messages DROP COLUMN reply_to;
DROP TABLE paid_messages;
