-- The fleet's approvals inbox: every exec and plugin approval a gateway asked its approval
-- client (this daemon) for, keyed as the gateway keys it, with what the gateway presented
-- (bounded) and how it ended. Stored, so a restart and every instance of a cluster show the
-- same inbox.
CREATE TABLE approvals (
    gateway_id BIGINT NOT NULL,
    approval_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    decision TEXT,
    command TEXT NOT NULL,
    warning TEXT,
    severity TEXT,
    agent_id TEXT,
    session_key TEXT,
    run_id TEXT,
    host TEXT,
    boot_id TEXT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    seen_at_ms BIGINT NOT NULL,
    resolved_at_ms BIGINT,
    resolved_by TEXT,
    resolver_key_id BIGINT,
    resolver_label TEXT,
    escalated_at_ms BIGINT,
    PRIMARY KEY (gateway_id, approval_id)
);
CREATE INDEX approvals_status ON approvals (status, created_at_ms);
CREATE INDEX approvals_newest ON approvals (created_at_ms);
