-- What a key reaches (docs/design.md, *Tenancy*): a tenant (NULL: every tenant), a selector
-- over reserved labels, its verbs (comma-separated; NULL: every verb) and its agents
-- (comma-separated; NULL: every agent). Every key made before keeps the whole fleet.
ALTER TABLE api_keys ADD COLUMN tenant TEXT;
ALTER TABLE api_keys ADD COLUMN selector TEXT;
ALTER TABLE api_keys ADD COLUMN verbs TEXT;
ALTER TABLE api_keys ADD COLUMN agents TEXT;
