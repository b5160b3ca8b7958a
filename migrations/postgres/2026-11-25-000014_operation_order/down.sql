ALTER TABLE operations DROP COLUMN created_ms;
