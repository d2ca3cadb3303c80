-- Distribution groups (分发组): named lists of units an issuing office sends documents to often
-- (e.g. 各乡镇人民政府, 县直各部门), owned by the issuing unit.
CREATE TABLE document_groups (
    id {{ID}},
    unit_id BIGINT NOT NULL REFERENCES units(id),
    name TEXT NOT NULL,
    created_by BIGINT REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (unit_id, name)
);

CREATE TABLE document_group_members (
    group_id BIGINT NOT NULL REFERENCES document_groups(id),
    unit_id BIGINT NOT NULL REFERENCES units(id),
    PRIMARY KEY (group_id, unit_id)
);
