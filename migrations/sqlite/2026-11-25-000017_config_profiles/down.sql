DROP TABLE config_drift;
DROP TABLE config_profiles;
