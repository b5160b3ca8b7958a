-- Managed gateways: OpenClaw gateways a daemon runs on its own host (one row per gateway, keyed
-- by the gateway it registered). `host_id` names the host whose daemon owns the process; the
-- rest is what it was asked for (release, source, config patch over the safe default, port,
-- running or stopped) and what it last saw (state, pid, restarts, crashes, last exit).
CREATE TABLE managed_gateways (
    gateway_id BIGINT PRIMARY KEY NOT NULL,
    host_id TEXT NOT NULL,
    version TEXT NOT NULL,
    source TEXT NOT NULL,
    config TEXT NOT NULL,
    port INTEGER NOT NULL,
    desired TEXT NOT NULL,
    state TEXT NOT NULL,
    pid BIGINT,
    restarts INTEGER NOT NULL,
    crashes INTEGER NOT NULL,
    last_exit TEXT,
    detail TEXT,
    started_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX managed_gateways_host_port ON managed_gateways (host_id, port);
