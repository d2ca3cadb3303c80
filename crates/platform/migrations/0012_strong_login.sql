-- Strong log-in (强身份认证): passkeys (WebAuthn) for both realms, staff certificates (U 盾), and how each session logged in
-- (its authentication methods, RFC 8176 `amr`, and when), for step-up and forced re-authentication.

CREATE TABLE passkeys (
    id {{ID}},
    realm TEXT NOT NULL CHECK (realm IN ('staff', 'public')),
    owner_id BIGINT NOT NULL,
    -- The WebAuthn user handle of the account (random, the same for all its passkeys).
    user_handle TEXT NOT NULL,
    -- base64url credential id, unique across realms so that a key never serves two accounts.
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- The credential (public key, counter, flags) as webauthn-rs serialises it.
    credential TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_owner ON passkeys(realm, owner_id);

-- A passkey registration, passkey log-in or certificate challenge under way: the server-side state paired with the challenge
-- the browser holds, used once.
CREATE TABLE webauthn_ceremonies (
    handle_hash TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('register', 'login', 'certificate')),
    owner_id BIGINT,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- X.509 certificates (SM2 or P-256) bound to staff accounts by an administrator: their holder
-- logs in by signing a challenge, or through a TLS-terminating proxy that verified the certificate.
CREATE TABLE user_certificates (
    id {{ID}},
    user_id BIGINT NOT NULL REFERENCES users(id),
    -- SM3 of the DER encoding.
    fingerprint TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    issuer TEXT NOT NULL,
    serial TEXT NOT NULL,
    algorithm TEXT NOT NULL CHECK (algorithm IN ('sm2', 'p256')),
    -- SEC1 uncompressed point, hex.
    public_key TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    pem TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX user_certificates_user ON user_certificates(user_id);

ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE sessions ADD COLUMN auth_time BIGINT;
ALTER TABLE public_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE public_sessions ADD COLUMN auth_time BIGINT;

-- One-time codes (短信/邮件验证码) as the public realm's second factor and step-up: a citizen can
-- ask for one at every log-in; a session waits at stage 'otp' until the code is entered.
ALTER TABLE public_accounts ADD COLUMN login_otp TEXT NOT NULL DEFAULT 'none';
ALTER TABLE public_sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'complete';
CREATE TABLE login_codes (
    id {{ID}},
    session_id BIGINT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    code_hash TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX login_codes_session ON login_codes(session_id);
