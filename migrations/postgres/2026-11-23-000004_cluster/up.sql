-- A cluster of daemons on one PostgreSQL (docs/design.md, *Cluster*).

-- One row per daemon instance; its heartbeat is written with the database's clock.
CREATE TABLE cluster_instances (
    instance_id TEXT PRIMARY KEY,
    advertise_url TEXT,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set by a cleanly stopping instance: peers stop placing gateways on it at once.
    stopping BOOLEAN NOT NULL DEFAULT FALSE
);

-- Who links each gateway, until when. No foreign key and never deleted: the epoch only ever
-- grows, even across a gateway's deletion (a fencing token that went backwards would let a
-- deposed owner's action through).
CREATE TABLE gateway_leases (
    gateway_id BIGINT PRIMARY KEY,
    owner TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX gateway_leases_owner ON gateway_leases (owner);

-- The change feed other instances read: the id of the transaction that last wrote each
-- gateway row, and a tombstone per deleted gateway. A reader asks for rows written by
-- transactions at or after the oldest one still running when it last read, so a late commit
-- is never skipped (a sequence number would be: numbers are taken before commit).
ALTER TABLE gateways ADD COLUMN written_xid BIGINT NOT NULL DEFAULT 0;
CREATE INDEX gateways_written_xid ON gateways (written_xid);
CREATE TABLE gateway_tombstones (
    gateway_id BIGINT PRIMARY KEY,
    written_xid BIGINT NOT NULL
);
CREATE INDEX gateway_tombstones_written_xid ON gateway_tombstones (written_xid);

CREATE FUNCTION gateways_mark_written() RETURNS trigger AS $$
BEGIN
    NEW.written_xid := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER gateways_mark_written BEFORE INSERT OR UPDATE ON gateways
    FOR EACH ROW EXECUTE FUNCTION gateways_mark_written();

CREATE FUNCTION gateways_tombstone() RETURNS trigger AS $$
BEGIN
    INSERT INTO gateway_tombstones (gateway_id, written_xid)
        VALUES (OLD.id, pg_current_xact_id()::text::bigint)
        ON CONFLICT (gateway_id) DO UPDATE SET written_xid = EXCLUDED.written_xid;
    RETURN OLD;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER gateways_tombstone AFTER DELETE ON gateways
    FOR EACH ROW EXECUTE FUNCTION gateways_tombstone();
