-- Disruption budgets: how many of the gateways a label selector picks may be out of service at
-- once (max_unavailable) or must stay in it (min_available); exactly one of the two is set.
CREATE TABLE disruption_budgets (
    name TEXT PRIMARY KEY NOT NULL,
    selector TEXT NOT NULL,
    max_unavailable INTEGER,
    min_available INTEGER,
    note TEXT,
    updated_at_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
-- The voluntary disruptions admitted and not yet over (a gateway being restarted, drained,
-- upgraded, suspended, or given a config change that restarts it): each is written in the
-- transaction that checked the budgets, so two instances cannot both spend the last unit. One
-- per gateway; `expires_ms` bounds one whose end was never recorded.
CREATE TABLE disruptions (
    gateway_id BIGINT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    operation_id TEXT,
    admitted_by TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
