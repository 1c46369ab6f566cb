-- +goose Up
-- The contact's number as people write it (+375 29 860-39-38), computed once
-- when the contact is stored: formatting it takes libphonenumber's parser,
-- far too slow to run for every row of every list render. Rows stored before
-- this migration are filled in by the store when it opens (SQL cannot format).
ALTER TABLE contacts ADD COLUMN phone_display TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE contacts DROP COLUMN phone_display;
