-- Cluster events need PostgreSQL; the table exists so both backends have the same schema.
CREATE TABLE cluster_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts BIGINT NOT NULL,
    kind TEXT NOT NULL,
    gateway_id BIGINT,
    payload TEXT NOT NULL,
    origin TEXT NOT NULL
);
