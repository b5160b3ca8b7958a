ALTER TABLE gateways DROP COLUMN labels;
