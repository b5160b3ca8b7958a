-- A cluster needs PostgreSQL (its wake-ups are LISTEN/NOTIFY triggers); nothing to do here, but
-- both backends keep the same list of migrations.
SELECT 1;
