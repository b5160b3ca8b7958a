-- Spend and run budgets per key and per tenant, and the ledger they are checked against
-- (docs/design.md, *Spend*). `subject` is `key:<id>` or `tenant:<name>`; money is in
-- millionths of a US dollar. A window (`1d`, `7d`, `30d`, `month`) is counted in the
-- budget's time zone from `anchor_day`, the day it was set.
CREATE TABLE spend_budgets (
    subject TEXT PRIMARY KEY NOT NULL,
    time_window TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    anchor_day TEXT NOT NULL,
    max_spend_micros BIGINT,
    soft_spend_micros BIGINT,
    max_runs BIGINT,
    max_parallel_runs BIGINT,
    estimate_micros BIGINT NOT NULL,
    agent_estimates TEXT NOT NULL,
    fail_closed BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
-- One row per spawn: reserved at admission (its estimate held), settled when the run ends
-- (the gateway's own cost, or the estimate where it gave none: `estimated`), released when
-- the run never started. Every spawn has one, budget or not: it is what cost per key reads.
CREATE TABLE spend_entries (
    id BIGSERIAL PRIMARY KEY,
    spawn_id TEXT NOT NULL,
    key_id BIGINT,
    tenant TEXT NOT NULL,
    agent TEXT,
    gateway_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    estimate_micros BIGINT NOT NULL,
    cost_micros BIGINT,
    estimated BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    settled_at BIGINT
);
CREATE UNIQUE INDEX spend_entries_spawn ON spend_entries (spawn_id);
CREATE INDEX spend_entries_key ON spend_entries (key_id, created_at);
CREATE INDEX spend_entries_tenant ON spend_entries (tenant, created_at);
