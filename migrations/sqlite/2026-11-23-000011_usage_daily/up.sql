-- Usage and cost per gateway, agent and day, as each gateway's `usage.cost` reports it
-- (docs/design.md, *Usage and cost*). A gateway's own daily totals are authoritative: a row is
-- replaced by the next report of the same day. Cost in micro-dollars (exact in both databases).
CREATE TABLE usage_daily (
    gateway_id BIGINT NOT NULL,
    agent_id TEXT NOT NULL,
    day TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    total_tokens BIGINT NOT NULL,
    cost_micros BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (gateway_id, agent_id, day)
);
CREATE INDEX usage_daily_day ON usage_daily (day);
