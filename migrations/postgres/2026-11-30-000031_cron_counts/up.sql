-- The cron gauges are counted every `[cron] watch_interval` (15 s): how many jobs by owner and
-- enabled, how many extra copies. Without these indexes each count read the whole table — at
-- 19,000 gateways of three jobs each 16 ms every 15 s on SQLite, about a twentieth of the idle
-- daemon's CPU (docs/performance.md, *Performance*). With them the first count reads an index
-- of two booleans (2 ms) and the second only the copies there are.
CREATE INDEX cron_jobs_owner_enabled ON cron_jobs (gateway_own, enabled);
CREATE INDEX cron_jobs_duplicates ON cron_jobs (duplicate_of) WHERE duplicate_of IS NOT NULL;
