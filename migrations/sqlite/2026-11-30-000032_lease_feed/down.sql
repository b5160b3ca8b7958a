ALTER TABLE gateway_leases DROP COLUMN written_xid;
