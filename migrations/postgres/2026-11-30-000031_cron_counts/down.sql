DROP INDEX cron_jobs_duplicates;
DROP INDEX cron_jobs_owner_enabled;
