-- A key's lifecycle: when it expires (NULL: never), and the secret it was rotated from, which
-- stays valid until `previous_until` so that the clients holding it can move over.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN previous_prefix TEXT;
ALTER TABLE api_keys ADD COLUMN previous_hash TEXT;
ALTER TABLE api_keys ADD COLUMN previous_until BIGINT;
