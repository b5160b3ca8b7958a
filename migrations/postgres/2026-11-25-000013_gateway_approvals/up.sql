-- Whether the daemon is this gateway's approval client (it connects with caps ["approvals"] and
-- answers its exec and plugin approvals): NULL follows the fleet's approvals.enabled.
ALTER TABLE gateways ADD COLUMN approvals BOOLEAN;
