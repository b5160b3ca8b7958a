-- Why an operation stopped where it did (a config rollout's "reverted: gateway 3 was not healthy
-- within 300s"), shown with it.
ALTER TABLE operations ADD COLUMN detail TEXT;
-- A config rollout's patch, fixed when it starts (a profile edited later does not change it):
-- values at secret paths are not in `patch` (the redaction marker is) but in `secrets_enc`,
-- encrypted with the master key and bound to the operation's id.
CREATE TABLE config_rollouts (
    operation_id TEXT PRIMARY KEY NOT NULL,
    profile TEXT,
    selector TEXT NOT NULL,
    patch TEXT NOT NULL,
    secrets_enc BLOB,
    replace_paths TEXT NOT NULL,
    note TEXT
);
-- Each gateway's values before a rollout wrote to it (what a revert puts back), saved before the
-- write, encrypted and bound to the operation and the gateway: they may hold secrets.
CREATE TABLE config_rollout_saved (
    operation_id TEXT NOT NULL,
    gateway_id BIGINT NOT NULL,
    previous_enc BLOB NOT NULL,
    saved_at_ms BIGINT NOT NULL,
    PRIMARY KEY (operation_id, gateway_id)
);
