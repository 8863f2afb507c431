-- +goose Up
-- API keys (issue 13): when a key was last used (written in batches, models.DB.FlushKeyUsage),
-- and an optional expiry after which the key is refused like a revoked one.
ALTER TABLE api_keys
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN expires_at   timestamptz;

-- +goose Down
ALTER TABLE api_keys
    DROP COLUMN expires_at,
    DROP COLUMN last_used_at;
