-- Portable schema (PostgreSQL flavour). Keep column names and types in step with
-- migrations/postgres and src/db/schema.rs.
CREATE TABLE gateways (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    tls BOOLEAN NOT NULL DEFAULT FALSE,
    allow_insecure_tls BOOLEAN NOT NULL DEFAULT FALSE,
    token_enc BYTEA,
    device_token_enc BYTEA,
    is_primary BOOLEAN NOT NULL DEFAULT FALSE,
    status TEXT NOT NULL DEFAULT 'unknown',
    last_seen BIGINT,
    latency BIGINT,
    sessions_count BIGINT NOT NULL DEFAULT 0,
    agents_count BIGINT NOT NULL DEFAULT 0,
    workspace_root TEXT,
    disable_device_pairing BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- At most one primary, enforced by the database itself.
CREATE UNIQUE INDEX gateways_one_primary ON gateways (is_primary) WHERE is_primary;

CREATE TABLE api_keys (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    prefix TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT
);

CREATE TABLE agents (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT,
    status TEXT NOT NULL DEFAULT 'offline',
    gateway_id BIGINT REFERENCES gateways (id) ON DELETE SET NULL,
    config TEXT NOT NULL DEFAULT '{}',
    source TEXT NOT NULL DEFAULT 'manual',
    session_key TEXT,
    last_seen BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE direct_connections (
    id BIGSERIAL PRIMARY KEY,
    agent_id BIGINT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    tool_name TEXT NOT NULL,
    tool_version TEXT,
    connection_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'connected',
    last_heartbeat BIGINT,
    metadata TEXT,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    last_model TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX direct_connections_agent ON direct_connections (agent_id);

CREATE TABLE spawns (
    id TEXT PRIMARY KEY NOT NULL,
    gateway_id BIGINT REFERENCES gateways (id) ON DELETE SET NULL,
    agent TEXT,
    method TEXT NOT NULL,
    request TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    run_id TEXT,
    session_key TEXT,
    status TEXT NOT NULL,
    result TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX spawns_gateway ON spawns (gateway_id);

CREATE TABLE gateway_health_samples (
    id BIGSERIAL PRIMARY KEY,
    gateway_id BIGINT NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    ts BIGINT NOT NULL,
    status TEXT NOT NULL,
    latency BIGINT,
    error TEXT
);
CREATE INDEX gateway_health_samples_gateway_ts ON gateway_health_samples (gateway_id, ts);
CREATE INDEX gateway_health_samples_ts ON gateway_health_samples (ts);

-- Encrypted blobs: the device identity, the master-key check value.
CREATE TABLE secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    ts BIGINT NOT NULL,
    actor TEXT NOT NULL,
    api_key_id BIGINT,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT,
    details TEXT
);
CREATE INDEX audit_log_ts ON audit_log (ts);
