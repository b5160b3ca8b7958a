-- The fleet's cron inventory (docs/design.md, *Cron*): each gateway's jobs as its `cron.list`
-- last said, the revision of that list, and the watchdog's judgement of missed fires. Stored
-- so that any instance of a cluster answers for every gateway; written by the one linking it.
CREATE TABLE cron_lists (
    gateway_id BIGINT PRIMARY KEY NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    snapshot_revision TEXT,
    -- cron.status's `enabled`: FALSE when the gateway's scheduler is off (`cron.enabled: false`,
    -- OPENCLAW_SKIP_CRON=1) and no job fires on its own; NULL: not asked.
    scheduler_enabled BOOLEAN,
    jobs BIGINT NOT NULL,
    unreadable BIGINT NOT NULL,
    read_at_ms BIGINT NOT NULL
);
CREATE TABLE cron_jobs (
    gateway_id BIGINT NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    declaration_key TEXT,
    agent TEXT,
    enabled BOOLEAN NOT NULL,
    gateway_own BOOLEAN NOT NULL,
    schedule TEXT NOT NULL,
    next_run_at_ms BIGINT,
    last_run_at_ms BIGINT,
    last_run_status TEXT,
    config_revision TEXT,
    -- The copy kept, when this job is an enabled extra copy of it (same name, schedule, payload).
    duplicate_of TEXT,
    seen_at_ms BIGINT NOT NULL,
    -- The watchdog judged this job's slots up to here (NULL: not yet looked at).
    judged_until_ms BIGINT,
    PRIMARY KEY (gateway_id, job_id)
);
CREATE INDEX cron_jobs_name ON cron_jobs (name, gateway_id, job_id);
CREATE TABLE cron_misses (
    gateway_id BIGINT NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    job_id TEXT NOT NULL,
    slot_ms BIGINT NOT NULL,
    job_name TEXT NOT NULL,
    -- missed (the gateway was up and skipped it) | unreachable (not linked over the slot)
    cause TEXT NOT NULL,
    found_at_ms BIGINT NOT NULL,
    -- NULL: not recovered; forcing: claimed, cron.run force sent; forced: taken; failed: refused
    recovery TEXT,
    recovery_detail TEXT,
    recovered_at_ms BIGINT,
    PRIMARY KEY (gateway_id, job_id, slot_ms)
);
CREATE INDEX cron_misses_found ON cron_misses (found_at_ms);
