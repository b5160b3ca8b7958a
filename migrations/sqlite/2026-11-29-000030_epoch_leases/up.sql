-- The cluster's epoch leases (PostgreSQL only; see the PostgreSQL migration of the same name).
-- The columns exist so both backends have the same schema; nothing writes them here.
ALTER TABLE cluster_instances ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cluster_instances ADD COLUMN expires_at BIGINT;
ALTER TABLE cluster_instances ADD COLUMN capacity BIGINT;
ALTER TABLE cluster_instances ADD COLUMN beat BIGINT NOT NULL DEFAULT 0;
ALTER TABLE gateway_leases ADD COLUMN owner_epoch BIGINT;
ALTER TABLE cluster_roles ADD COLUMN holder_epoch BIGINT;
