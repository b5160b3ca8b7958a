-- Hosts: what each host's daemon last said of itself (the releases installed for its managed
-- gateways, CPUs, memory, load: a JSON document), written every round by its daemon.
CREATE TABLE hosts (
    host_id TEXT PRIMARY KEY NOT NULL,
    info TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
