-- +goose Up
-- The media sweep asks, for every stored blob, whether an attachment refers to
-- it as its bytes or as its thumbnail; both lookups use an index.
CREATE INDEX attachments_by_thumb ON attachments (thumb_hash);

-- +goose Down
DROP INDEX attachments_by_thumb;
