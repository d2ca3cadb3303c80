-- The certificate authority (数字证书认证): a root and an issuing CA made at first start (SM2,
-- keys sealed with the secret key), the certificates they issue to units (seals) and staff
-- (signing, certificate log-in), and revocation. The security administrator runs it.

CREATE TABLE pki_authorities (
    id {{ID}},
    kind TEXT NOT NULL UNIQUE CHECK (kind IN ('root', 'issuing')),
    subject TEXT NOT NULL,
    serial TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    cert_pem TEXT NOT NULL,
    key_sealed TEXT NOT NULL,
    not_after BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE pki_certificates (
    id {{ID}},
    serial TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    holder_kind TEXT NOT NULL CHECK (holder_kind IN ('unit', 'staff')),
    holder_id BIGINT NOT NULL,
    profile TEXT NOT NULL CHECK (profile IN ('seal', 'staff')),
    algorithm TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    cert_pem TEXT NOT NULL,
    -- Only when tongban made the key (a unit's seal); staff keys stay on their USB keys.
    key_sealed TEXT,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revocation_reason BIGINT
);
CREATE INDEX pki_certificates_holder ON pki_certificates(holder_kind, holder_id);

INSERT INTO role_permissions (role_id, permission) SELECT id, 'pki.manage' FROM roles WHERE code = 'sec_admin';
