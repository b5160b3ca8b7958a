DROP TABLE cron_misses;
DROP TABLE cron_jobs;
DROP TABLE cron_lists;
