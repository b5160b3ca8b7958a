ALTER TABLE gateways DROP COLUMN cordoned;
