-- A gateway in maintenance (an operator's, with a reason): out of routing and the election like
-- a cordon, its alerts suppressed, until it is ended or `maintenance_until` (Unix seconds)
-- passes. NULL reason: not in maintenance.
ALTER TABLE gateways ADD COLUMN maintenance_reason TEXT;
ALTER TABLE gateways ADD COLUMN maintenance_by TEXT;
ALTER TABLE gateways ADD COLUMN maintenance_since BIGINT;
ALTER TABLE gateways ADD COLUMN maintenance_until BIGINT;
