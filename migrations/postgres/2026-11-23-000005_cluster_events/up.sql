-- Every instance's events in one global order (docs/design.md, *Cluster*): an instance
-- inserts its events in batches, each batch under one transaction-scoped advisory lock, so ids
-- commit in increasing order and a reader reading `id > last` never skips one; every instance
-- serves its streams from this table. Old rows are pruned.
CREATE TABLE cluster_events (
    id BIGSERIAL PRIMARY KEY,
    ts BIGINT NOT NULL,
    kind TEXT NOT NULL,
    gateway_id BIGINT,
    payload TEXT NOT NULL,
    origin TEXT NOT NULL
);
