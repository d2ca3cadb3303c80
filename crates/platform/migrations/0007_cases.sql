-- Internal processing (内网办理): cases received from public intake through zone messages, their
-- materials and history. A case carries its deadline clock (JSON) and its workflow instance.

CREATE TABLE approval_cases (
    id {{ID}},
    number TEXT NOT NULL UNIQUE,
    item_id BIGINT NOT NULL REFERENCES approval_items(id),
    applicant TEXT NOT NULL,
    form TEXT NOT NULL,
    status TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    accepted_at BIGINT,
    accepted_by BIGINT,
    clock TEXT,
    due_on TEXT,
    instance_id BIGINT,
    decision TEXT,
    result_no TEXT,
    note TEXT NOT NULL DEFAULT '',
    completed_at BIGINT,
    rating BIGINT,
    rating_comment TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX approval_cases_status ON approval_cases(status, received_at);
CREATE INDEX approval_cases_instance ON approval_cases(instance_id);

CREATE TABLE case_materials (
    id {{ID}},
    case_id BIGINT NOT NULL REFERENCES approval_cases(id),
    material_index BIGINT NOT NULL,
    name TEXT NOT NULL,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sm3 TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX case_materials_case ON case_materials(case_id);

CREATE TABLE case_events (
    id {{ID}},
    case_id BIGINT NOT NULL REFERENCES approval_cases(id),
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX case_events_case ON case_events(case_id);

CREATE TABLE result_numbers (
    year BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);

INSERT INTO roles (code, name, description, admin_class, builtin, created_at, updated_at)
    SELECT 'window_clerk', '窗口受理员', '政务服务中心窗口：预审、受理、不予受理、一次性告知补正', 'none', 1, 0, 0
    WHERE NOT EXISTS (SELECT 1 FROM roles WHERE code = 'window_clerk');
INSERT INTO role_permissions (role_id, permission) SELECT id, 'approval.accept' FROM roles WHERE code = 'window_clerk';
INSERT INTO role_permissions (role_id, permission) SELECT id, 'workbench.use' FROM roles WHERE code = 'window_clerk';
INSERT INTO role_permissions (role_id, permission) SELECT id, 'workflow.start' FROM roles WHERE code = 'window_clerk';

INSERT INTO roles (code, name, description, admin_class, builtin, created_at, updated_at)
    SELECT 'supervisor', '电子监察员', '电子监察：查看全部办件与任务的时限状态，催办，导出', 'none', 1, 0, 0
    WHERE NOT EXISTS (SELECT 1 FROM roles WHERE code = 'supervisor');
INSERT INTO role_permissions (role_id, permission) SELECT id, 'supervision.read' FROM roles WHERE code = 'supervisor';
INSERT INTO role_permissions (role_id, permission) SELECT id, 'workbench.use' FROM roles WHERE code = 'supervisor';

CREATE TABLE urges (
    id {{ID}},
    task_id BIGINT NOT NULL REFERENCES wf_tasks(id),
    by_user BIGINT NOT NULL REFERENCES users(id),
    at BIGINT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX urges_task ON urges(task_id);

-- A bad rating (不满意 / 非常不满意) opens a follow-up for the supervisor (差评回访整改).
CREATE TABLE rating_followups (
    id {{ID}},
    case_id BIGINT NOT NULL REFERENCES approval_cases(id),
    level BIGINT NOT NULL,
    comment TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    closed_at BIGINT,
    closed_by BIGINT,
    resolution TEXT
);
