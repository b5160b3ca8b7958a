ALTER TABLE approvals DROP COLUMN whole;
ALTER TABLE approvals DROP COLUMN offered;
