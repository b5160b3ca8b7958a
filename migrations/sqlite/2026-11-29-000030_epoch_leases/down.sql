ALTER TABLE cluster_roles DROP COLUMN holder_epoch;
ALTER TABLE gateway_leases DROP COLUMN owner_epoch;
ALTER TABLE cluster_instances DROP COLUMN beat;
ALTER TABLE cluster_instances DROP COLUMN capacity;
ALTER TABLE cluster_instances DROP COLUMN expires_at;
ALTER TABLE cluster_instances DROP COLUMN epoch;
