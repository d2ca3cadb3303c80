-- The OpenID Connect provider (统一身份认证): per realm (staff, public) signing keys sealed with
-- the installation's SM4 key, registered relying parties, one-time authorization codes, refresh
-- token families, revoked access tokens, consents and which clients each log-in session reached.

CREATE TABLE oidc_keys (
    id {{ID}},
    realm TEXT NOT NULL,
    kid TEXT NOT NULL UNIQUE,
    alg TEXT NOT NULL,
    private_sealed TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    published_until BIGINT
);
CREATE INDEX oidc_keys_realm ON oidc_keys(realm, alg, retired_at);

CREATE TABLE oidc_clients (
    id {{ID}},
    realm TEXT NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    confidential BIGINT NOT NULL,
    secret_hash TEXT,
    redirect_uris TEXT NOT NULL,
    post_logout_uris TEXT NOT NULL,
    backchannel_logout_uri TEXT NOT NULL DEFAULT '',
    scopes TEXT NOT NULL,
    grants TEXT NOT NULL,
    id_token_alg TEXT NOT NULL,
    access_ttl BIGINT NOT NULL,
    refresh_ttl BIGINT NOT NULL,
    first_party BIGINT NOT NULL DEFAULT 0,
    logo_url TEXT NOT NULL DEFAULT '',
    enabled BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE oidc_codes (
    code_hash TEXT PRIMARY KEY,
    realm TEXT NOT NULL,
    client_id TEXT NOT NULL,
    subject BIGINT NOT NULL,
    session_id BIGINT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    family TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE oidc_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    realm TEXT NOT NULL,
    client_id TEXT NOT NULL,
    subject BIGINT NOT NULL,
    session_id BIGINT NOT NULL,
    scope TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX oidc_refresh_family ON oidc_refresh_tokens(family);

CREATE TABLE oidc_revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE TABLE oidc_consents (
    realm TEXT NOT NULL,
    subject BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (realm, subject, client_id)
);

CREATE TABLE oidc_session_clients (
    realm TEXT NOT NULL,
    session_id BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    PRIMARY KEY (realm, session_id, client_id)
);
