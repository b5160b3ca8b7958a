-- Fleet operations (a drain, a rolling restart): each is stored with its progress, advanced one
-- recorded step at a time, so a daemon restart resumes it where it was (docs/design.md,
-- *Fleet operations*). `version` is bumped by every write: a step is recorded only over the
-- version it was decided on.
CREATE TABLE operations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    progress TEXT NOT NULL,
    created_by TEXT NOT NULL,
    api_key_id BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT,
    version BIGINT NOT NULL
);
CREATE INDEX operations_state ON operations (state);
