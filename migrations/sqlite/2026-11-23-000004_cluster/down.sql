DROP TABLE gateway_leases;
DROP TABLE cluster_instances;
