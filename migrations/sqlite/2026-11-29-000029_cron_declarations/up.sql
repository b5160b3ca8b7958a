-- Declared cron jobs (docs/design.md, *Cron*): the job an operator wants on every gateway a
-- selector picks, and what each gateway was last written and read back as. A deleted
-- declaration stays as a tombstone (`deleted`) so a gateway that comes back carrying its job
-- has it removed; a new PUT of the name revives it.
CREATE TABLE cron_declarations (
    name TEXT PRIMARY KEY NOT NULL,
    selector TEXT NOT NULL,
    -- JSON: the job as cron.add takes it, without declarationKey and enabled.
    job TEXT NOT NULL,
    -- NULL: fired by every matching gateway; overlap | gap: by one, moved this way.
    single TEXT,
    -- The gateway a single-firing job is enabled on.
    owner_gateway_id BIGINT,
    revision BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL,
    -- The rollout of this revision: the keeper carries on the declaration only once it succeeded.
    operation_id TEXT,
    updated_by TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE TABLE cron_declared (
    name TEXT NOT NULL,
    gateway_id BIGINT NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    -- The declaration's revision last written here.
    revision BIGINT NOT NULL,
    -- The gateway's id of the job (NULL: the write was refused).
    job_id TEXT,
    enabled BOOLEAN NOT NULL,
    -- The job's configRevision as last read back; another one in the inventory: judged again.
    config_revision TEXT,
    -- JSON array of the paths where the gateway's job differs from the declaration, by value.
    drift TEXT NOT NULL,
    -- Why the gateway refused this revision (not written again until the next revision).
    error TEXT,
    checked_at_ms BIGINT NOT NULL,
    PRIMARY KEY (name, gateway_id)
);
CREATE INDEX cron_declared_gateway ON cron_declared (gateway_id);
-- The keeper asks which gateways carry a declaration's job.
CREATE INDEX cron_jobs_declaration ON cron_jobs (declaration_key, gateway_id);
