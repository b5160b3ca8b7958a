-- The tenant an audit row belongs to, decided when it is written (the scoped caller's tenant,
-- else the gateway it is about; NULL: the platform's own), for retention per tenant; and how far
-- the audit sink has delivered (one row per sink, the last audit id a receiver acknowledged).
ALTER TABLE audit_log ADD COLUMN tenant TEXT;
CREATE INDEX audit_log_tenant_ts ON audit_log (tenant, ts);
CREATE TABLE audit_sink_cursor (
    name TEXT PRIMARY KEY NOT NULL,
    last_id BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
