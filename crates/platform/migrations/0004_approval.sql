-- Online approval (网上行政审批), part one: the service catalogue (事项目录). Lists (co-departments,
-- materials, form fields, life events) are JSON text: they are read and written whole with the item.

CREATE TABLE approval_items (
    id {{ID}},
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    audience TEXT NOT NULL,
    lead_unit_id BIGINT NOT NULL REFERENCES units(id),
    co_unit_ids TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    conditions TEXT NOT NULL,
    legal_days BIGINT NOT NULL,
    promised_days BIGINT NOT NULL,
    fee TEXT NOT NULL,
    materials TEXT NOT NULL,
    form TEXT NOT NULL,
    process_key TEXT NOT NULL,
    visits BIGINT NOT NULL,
    life_events TEXT NOT NULL,
    location TEXT NOT NULL,
    phone TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX approval_items_lead ON approval_items(lead_unit_id);

INSERT INTO role_permissions (role_id, permission) SELECT id, 'catalogue.write' FROM roles WHERE code = 'sys_admin';
