-- Hosts: what each host's daemon last said of itself (the releases installed for its managed
-- gateways, CPUs, memory, load: a JSON document), written every round by its daemon. And the
-- host each cluster instance runs on: a managed gateway whose host has no live instance keeps
-- running, unsupervised, and is reported so.
CREATE TABLE hosts (
    host_id TEXT PRIMARY KEY NOT NULL,
    info TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
ALTER TABLE cluster_instances ADD COLUMN host_id TEXT;
