ALTER TABLE gateways DROP COLUMN maintenance_until;
ALTER TABLE gateways DROP COLUMN maintenance_since;
ALTER TABLE gateways DROP COLUMN maintenance_by;
ALTER TABLE gateways DROP COLUMN maintenance_reason;
