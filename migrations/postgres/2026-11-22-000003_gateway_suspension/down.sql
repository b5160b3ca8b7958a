ALTER TABLE gateways DROP COLUMN suspension_id;
