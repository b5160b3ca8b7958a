-- A cluster needs PostgreSQL; on SQLite the daemon is alone (its state directory is locked).
-- The tables exist so both backends have the same schema; nothing writes them here.
CREATE TABLE cluster_instances (
    instance_id TEXT PRIMARY KEY,
    advertise_url TEXT,
    started_at BIGINT NOT NULL DEFAULT 0,
    heartbeat_at BIGINT NOT NULL DEFAULT 0,
    stopping BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE gateway_leases (
    gateway_id BIGINT PRIMARY KEY,
    owner TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
