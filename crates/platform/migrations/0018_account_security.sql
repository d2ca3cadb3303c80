-- Account security (issue 13): whether an API token was made in a session with a second factor
-- (tokens without one never act for an administrator-class account), and the throttles of
-- log-in attempts by key: a name nobody has (so that unknown and real names answer alike), and
-- a public account from one source (growing delays instead of a lock anyone could trigger).
ALTER TABLE api_tokens ADD COLUMN second_factor BIGINT NOT NULL DEFAULT 0;

CREATE TABLE login_attempts (
    attempt_key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    blocked_until BIGINT,
    warned_at BIGINT
);
