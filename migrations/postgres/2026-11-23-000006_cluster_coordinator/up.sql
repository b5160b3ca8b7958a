-- One coordinator for the fleet-wide decisions (docs/design.md, *Cluster*): a lease row with
-- an epoch that only grows, and the acting primary it chose, written only while its lease
-- holds (checked in the same statement).
CREATE TABLE cluster_roles (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE cluster_acting_primary (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    gateway_id BIGINT,
    coordinator_epoch BIGINT NOT NULL
);
