-- A gateway's labels ({"region": "eu", "tier": "canary"}) as a JSON object of strings, each key
-- and value checked (Kubernetes' syntax and limits) before it is written: selectors pick
-- gateways by them for spawns, fleet operations, the approvals inbox and config profiles.
ALTER TABLE gateways ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
