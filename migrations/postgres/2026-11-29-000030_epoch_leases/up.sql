-- Epoch-based leases (issue 60; docs/design.md, *Cluster*). An instance's liveness is its one
-- row here, renewed each round (`expires_at`, by the database's clock) under an `epoch` that
-- grows whenever the row had lapsed; a gateway's lease row is written only when its owner
-- changes, and holds while its owner's row is alive under the epoch it was taken with
-- (`owner_epoch`). Steady state: one row write per instance per round, whatever the fleet.
--
-- Side by side with the previous version during a rolling upgrade: a lease taken this way has
-- `expires_at = 'infinity'`, which the previous version reads as held (it never takes a lease
-- before its `expires_at`); a previous version's lease (`owner_epoch` NULL) holds until its
-- `expires_at`, as it always did. Released: `expires_at = now()`, `owner_epoch` NULL — free to both.
ALTER TABLE cluster_instances
    ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN expires_at TIMESTAMPTZ,
    -- How many gateways it can link (its open-file limit less a reserve, or
    -- cluster.max_gateways); NULL: a previous version, placed as if unbounded.
    ADD COLUMN capacity BIGINT,
    -- The sequence number of its latest heartbeat (strictly growing per instance): a statement
    -- of an older round — one whose caller gave up waiting while it queued for a connection,
    -- and that reaches the server late — finds it moved on and does nothing.
    ADD COLUMN beat BIGINT NOT NULL DEFAULT 0;
ALTER TABLE gateway_leases ADD COLUMN owner_epoch BIGINT;
ALTER TABLE cluster_roles ADD COLUMN holder_epoch BIGINT;

-- Whether a lease row (a gateway's, or a role's) holds now: a timed lease until its expiry, an
-- epoch lease while its owner's row is alive under the same epoch and not stopping.
CREATE FUNCTION cluster_lease_holds(owner TEXT, owner_epoch BIGINT, expires_at TIMESTAMPTZ)
RETURNS BOOLEAN AS $$
    SELECT CASE WHEN owner_epoch IS NULL THEN expires_at > now()
        ELSE EXISTS (SELECT 1 FROM cluster_instances i WHERE i.instance_id = owner
            AND i.epoch = owner_epoch AND i.expires_at > now() AND NOT i.stopping) END
$$ LANGUAGE sql STABLE;

-- Whether a statement of `instance`'s round under `epoch` and `beat` may act: its row is alive
-- under that epoch and that beat is its latest (a statement of an older round, reaching the
-- server late, does nothing).
CREATE FUNCTION cluster_round_current(instance TEXT, epoch BIGINT, beat BIGINT)
RETURNS BOOLEAN AS $$
    SELECT cluster_lease_holds(instance, epoch, 'infinity') AND EXISTS (SELECT 1
        FROM cluster_instances i WHERE i.instance_id = instance AND i.beat = beat)
$$ LANGUAGE sql STABLE;

-- When a lease row stops holding (the same rule): for `expires_in_ms` in `GET /api/cluster`.
CREATE FUNCTION cluster_lease_until(owner TEXT, owner_epoch BIGINT, expires_at TIMESTAMPTZ)
RETURNS TIMESTAMPTZ AS $$
    SELECT CASE WHEN owner_epoch IS NULL THEN expires_at
        ELSE COALESCE((SELECT CASE WHEN i.stopping THEN '-infinity'::timestamptz ELSE i.expires_at END
            FROM cluster_instances i WHERE i.instance_id = owner AND i.epoch = owner_epoch),
            '-infinity'::timestamptz) END
$$ LANGUAGE sql STABLE;
