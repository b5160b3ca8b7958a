ALTER TABLE api_keys DROP COLUMN agents;
ALTER TABLE api_keys DROP COLUMN verbs;
ALTER TABLE api_keys DROP COLUMN selector;
ALTER TABLE api_keys DROP COLUMN tenant;
