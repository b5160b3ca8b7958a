ALTER TABLE gateways DROP COLUMN gateway_agent_id;
