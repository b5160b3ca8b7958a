DROP FUNCTION cluster_lease_until(TEXT, BIGINT, TIMESTAMPTZ);
DROP FUNCTION cluster_round_current(TEXT, BIGINT, BIGINT);
DROP FUNCTION cluster_lease_holds(TEXT, BIGINT, TIMESTAMPTZ);
-- Epoch leases become timed leases that end now: the previous version adopts them at once.
UPDATE gateway_leases SET expires_at = now() WHERE owner_epoch IS NOT NULL;
UPDATE cluster_roles SET expires_at = now() WHERE holder_epoch IS NOT NULL;
ALTER TABLE cluster_roles DROP COLUMN holder_epoch;
ALTER TABLE gateway_leases DROP COLUMN owner_epoch;
ALTER TABLE cluster_instances DROP COLUMN beat, DROP COLUMN capacity, DROP COLUMN expires_at,
    DROP COLUMN epoch;
