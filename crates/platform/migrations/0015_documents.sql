-- Official documents (公文, GB/T 9704-2012): drafts with the standard's elements, and document
-- numbers (发文字号) per unit, prefix and year, without gaps or repeats.

CREATE TABLE document_prefixes (
    unit_id BIGINT PRIMARY KEY REFERENCES units(id),
    -- The issuing authority's code in the number, e.g. 嘉政发 in 嘉政发〔2026〕12号.
    prefix TEXT NOT NULL
);

CREATE TABLE document_numbers (
    unit_id BIGINT NOT NULL REFERENCES units(id),
    prefix TEXT NOT NULL,
    year BIGINT NOT NULL,
    last BIGINT NOT NULL,
    PRIMARY KEY (unit_id, prefix, year)
);

CREATE TABLE documents (
    id {{ID}},
    unit_id BIGINT NOT NULL REFERENCES units(id),
    status TEXT NOT NULL CHECK (status IN ('draft', 'in_review', 'signed_off', 'numbered', 'issued')),
    title TEXT NOT NULL,
    urgency TEXT NOT NULL DEFAULT '',
    doc_number TEXT UNIQUE,
    number_year BIGINT,
    number_seq BIGINT,
    -- The GB/T 9704 elements as JSON.
    fields TEXT NOT NULL,
    -- The review and sign-off process (核稿、签发) and who signed it off.
    instance_id BIGINT,
    signed_off_by BIGINT REFERENCES users(id),
    -- Once issued: the sealed package (tongban-seal/1) and its SM3.
    package TEXT,
    package_sm3 TEXT,
    created_by BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX documents_unit ON documents(unit_id, status);

-- Exchange (公文交换): one row per recipient unit of an issued document.
CREATE TABLE document_deliveries (
    id {{ID}},
    document_id BIGINT NOT NULL REFERENCES documents(id),
    recipient_unit_id BIGINT NOT NULL REFERENCES units(id),
    status TEXT NOT NULL CHECK (status IN ('delivered', 'read', 'signed', 'refused', 'withdrawn')),
    urgency TEXT NOT NULL DEFAULT '',
    delivered_at BIGINT NOT NULL,
    -- Urgent documents must be signed for within working days (特急 1, 加急 2), by this date.
    due_on TEXT,
    read_at BIGINT,
    signed_at BIGINT,
    refused_at BIGINT,
    withdrawn_at BIGINT,
    refusal_reason TEXT,
    -- The signed receipt (签收回执): JSON with the text, the SM2 signature and the certificate.
    receipt TEXT,
    -- Handling after signing for it (收文办理: 拟办, 批示, 承办): the process, and when it ended
    -- (办结 and 归档).
    instance_id BIGINT,
    registered_at BIGINT,
    archived_at BIGINT,
    UNIQUE (document_id, recipient_unit_id)
);
CREATE INDEX document_deliveries_inbox ON document_deliveries(recipient_unit_id, status);

INSERT INTO role_permissions (role_id, permission) SELECT id, 'document.issue' FROM roles WHERE code = 'unit_admin';

-- The document office of a unit (公文管理员): numbers, seals, sends, signs for and registers documents.
INSERT INTO roles (code, name, description, admin_class, builtin, created_at, updated_at) VALUES
    ('doc_office', '公文管理员', 'Numbers, seals and sends the unit''s documents; signs for received ones', 'none', 1, 0, 0);
INSERT INTO role_permissions (role_id, permission) SELECT id, 'document.issue' FROM roles WHERE code = 'doc_office';
INSERT INTO role_permissions (role_id, permission) SELECT id, 'seal.use' FROM roles WHERE code = 'doc_office';
