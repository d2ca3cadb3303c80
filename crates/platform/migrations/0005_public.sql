-- The public realm (公众用户): citizens and enterprises registered with real names, and their
-- sessions. Kept apart from staff accounts so that a public log-in never reaches staff pages.

CREATE TABLE public_accounts (
    id {{ID}},
    kind TEXT NOT NULL CHECK (kind IN ('person', 'enterprise')),
    name TEXT NOT NULL,
    cert_no TEXT NOT NULL UNIQUE,
    phone TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE public_sessions (
    id {{ID}},
    token_hash TEXT NOT NULL UNIQUE,
    account_id BIGINT NOT NULL REFERENCES public_accounts(id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ip TEXT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX public_sessions_account ON public_sessions(account_id);
