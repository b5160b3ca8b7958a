-- The v1 API's main agent of a gateway.
ALTER TABLE gateways ADD COLUMN gateway_agent_id TEXT;
