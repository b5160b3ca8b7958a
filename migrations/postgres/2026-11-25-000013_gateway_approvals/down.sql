ALTER TABLE gateways DROP COLUMN approvals;
