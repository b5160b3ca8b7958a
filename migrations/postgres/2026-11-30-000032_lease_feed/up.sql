-- Who holds each gateway's lease, on the change feed (docs/design.md, *Cluster*, last-seen).
-- In a cluster an owner no longer rewrites a gateway's row as its last-seen moves on (10,000
-- gateways once a minute: ~167 rows a second, each carried to every instance); its heartbeat
-- stands for it. Peers learn whose heartbeat that is from the lease rows, stamped here like
-- the gateway rows and read from the same feed position. Lease rows are written only when a
-- lease changes hands, so the feed carries O(hand-overs), not O(gateways).
ALTER TABLE gateway_leases ADD COLUMN written_xid BIGINT NOT NULL DEFAULT 0;
CREATE INDEX gateway_leases_written_xid ON gateway_leases (written_xid);
CREATE TRIGGER gateway_leases_mark_written BEFORE INSERT OR UPDATE ON gateway_leases
    FOR EACH ROW EXECUTE FUNCTION gateways_mark_written();
