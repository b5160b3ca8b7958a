DROP TRIGGER gateway_leases_mark_written ON gateway_leases;
DROP INDEX gateway_leases_written_xid;
ALTER TABLE gateway_leases DROP COLUMN written_xid;
