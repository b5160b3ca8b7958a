-- The order operations were started in, in milliseconds and strictly increasing (one more than
-- the newest when two start in the same millisecond): `created_at` is in seconds, and two
-- operations started in the same second were listed in the order of their random ids.
ALTER TABLE operations ADD COLUMN created_ms BIGINT NOT NULL DEFAULT 0;
UPDATE operations SET created_ms = created_at * 1000;
