DROP TRIGGER gateways_tombstone ON gateways;
DROP FUNCTION gateways_tombstone();
DROP TRIGGER gateways_mark_written ON gateways;
DROP FUNCTION gateways_mark_written();
DROP TABLE gateway_tombstones;
DROP INDEX gateways_written_xid;
ALTER TABLE gateways DROP COLUMN written_xid;
DROP TABLE gateway_leases;
DROP TABLE cluster_instances;
