DROP TABLE cluster_events;
