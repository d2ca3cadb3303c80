-- Electronic seals (电子印章): a unit's seal is its image and its seal certificate (key kept
-- sealed by the CA). Using a seal needs `seal.use` with the unit in scope, and is audited.

CREATE TABLE seals (
    id {{ID}},
    unit_id BIGINT NOT NULL UNIQUE REFERENCES units(id),
    certificate_id BIGINT NOT NULL REFERENCES pki_certificates(id),
    -- PNG, base64 (seal images are small; at most 256 KiB).
    image TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);

INSERT INTO role_permissions (role_id, permission) SELECT id, 'seal.use' FROM roles WHERE code = 'unit_admin';
