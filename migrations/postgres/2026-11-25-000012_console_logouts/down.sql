DROP TABLE console_logouts;
