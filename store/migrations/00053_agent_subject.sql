-- +goose Up
-- The login source's own id of the person behind an agent (the proxy's user
-- header, or the token's issuer and sub): an agent's login is their e-mail,
-- which a person may be able to change at the login source, so the subject
-- binds the login to one person (SignIn). NULL: not bound yet (agents from
-- before this migration bind at their next sign-in; the dev login and the
-- seeds have none).
ALTER TABLE agents ADD COLUMN subject TEXT;
CREATE UNIQUE INDEX agents_by_subject ON agents (subject) WHERE subject IS NOT NULL;

-- +goose Down
DROP INDEX agents_by_subject;
ALTER TABLE agents DROP COLUMN subject;
