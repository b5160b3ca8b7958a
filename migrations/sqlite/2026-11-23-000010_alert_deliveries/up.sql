-- The webhook delivery log: every alert sent (or not), its attempts and the last error
-- (docs/design.md, *Alerts*). The newest 10,000 rows are kept.
CREATE TABLE alert_deliveries (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    gateway_id BIGINT,
    summary TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX alert_deliveries_created ON alert_deliveries (created_at);
