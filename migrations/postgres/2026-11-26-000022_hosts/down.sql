ALTER TABLE cluster_instances DROP COLUMN host_id;
DROP TABLE hosts;
