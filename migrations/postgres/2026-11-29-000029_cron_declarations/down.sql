DROP INDEX cron_jobs_declaration;
DROP TABLE cron_declared;
DROP TABLE cron_declarations;
