-- Console sessions ended by a logout: the cookie's MAC until the cookie would have expired
-- anyway (docs/design.md, *The web console*). Read with the API keys by every instance.
CREATE TABLE console_logouts (
    mac TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
