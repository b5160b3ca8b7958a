-- An instance of a cluster looks for maintenance windows that ran out every 5 s
-- (src/db/cluster/reads.rs): this index makes that a lookup of the few gateways in maintenance
-- with an end, not a scan of the fleet.
CREATE INDEX gateways_maintenance_until ON gateways (maintenance_until)
    WHERE maintenance_until IS NOT NULL;
