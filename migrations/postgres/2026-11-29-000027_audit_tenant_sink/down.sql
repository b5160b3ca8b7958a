DROP TABLE audit_sink_cursor;
DROP INDEX audit_log_tenant_ts;
ALTER TABLE audit_log DROP COLUMN tenant;
