DROP TABLE cluster_acting_primary;
DROP TABLE cluster_roles;
