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

-- Challenges now also serve a holder binding their certificate (proof of possession). They live
-- five minutes, so the table is made anew rather than copied.
DROP TABLE webauthn_ceremonies;
CREATE TABLE webauthn_ceremonies (
    handle_hash TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('register', 'login', 'certificate', 'certificate_bind')),
    owner_id BIGINT,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
