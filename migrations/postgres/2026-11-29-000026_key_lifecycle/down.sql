ALTER TABLE api_keys DROP COLUMN previous_until;
ALTER TABLE api_keys DROP COLUMN previous_hash;
ALTER TABLE api_keys DROP COLUMN previous_prefix;
ALTER TABLE api_keys DROP COLUMN expires_at;
