-- A cluster needs PostgreSQL; the tables exist so both backends have the same schema.
CREATE TABLE cluster_roles (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE cluster_acting_primary (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE,
    gateway_id BIGINT,
    coordinator_epoch BIGINT NOT NULL
);
