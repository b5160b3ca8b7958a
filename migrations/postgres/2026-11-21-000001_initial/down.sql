DROP TABLE audit_log;
DROP TABLE secrets;
DROP TABLE gateway_health_samples;
DROP TABLE spawns;
DROP TABLE direct_connections;
DROP TABLE agents;
DROP TABLE api_keys;
DROP TABLE gateways;
