-- Desired configuration across the fleet: each profile is a merge patch for the gateways its
-- label selector picks. Values at secret paths (those OpenClaw redacts) are not in `patch`
-- (it shows the redaction marker there): they are in `secrets_enc`, encrypted with the master
-- key and bound to the profile's name.
CREATE TABLE config_profiles (
    name TEXT PRIMARY KEY NOT NULL,
    selector TEXT NOT NULL,
    patch TEXT NOT NULL,
    secrets_enc BLOB,
    replace_paths TEXT NOT NULL,
    note TEXT,
    updated_at_ms BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
-- Each gateway's drift as the instance linking it last judged it (config.get read back
-- against its profiles): shared, so every instance answers for the whole fleet.
CREATE TABLE config_drift (
    gateway_id BIGINT PRIMARY KEY NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL,
    checked_at_ms BIGINT NOT NULL
);
