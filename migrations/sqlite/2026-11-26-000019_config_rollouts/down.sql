DROP TABLE config_rollout_saved;
DROP TABLE config_rollouts;
ALTER TABLE operations DROP COLUMN detail;
