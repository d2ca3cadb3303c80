-- Workflow (工作流): process definitions (versioned per key), instances with the engine's state as
-- JSON and a revision for optimistic locking, a projection of tasks for to-do queries, the
-- candidates of queue tasks, and pending boundary timers.

CREATE TABLE wf_definitions (
    id {{ID}},
    process_key TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    xml TEXT NOT NULL,
    sm3 TEXT NOT NULL,
    created_by BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (process_key, version)
);

CREATE TABLE wf_instances (
    id {{ID}},
    definition_id BIGINT NOT NULL REFERENCES wf_definitions(id),
    business_key TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    state TEXT NOT NULL,
    revision BIGINT NOT NULL,
    started_by BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX wf_instances_business ON wf_instances(business_key);

CREATE TABLE wf_tasks (
    id {{ID}},
    instance_id BIGINT NOT NULL REFERENCES wf_instances(id),
    task_no BIGINT NOT NULL,
    node_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    assignee_id BIGINT,
    cosign_of BIGINT,
    queue_unit TEXT,
    created_at BIGINT NOT NULL,
    due_on TEXT,
    alert BIGINT NOT NULL DEFAULT 0,
    completed_by BIGINT,
    closed_at BIGINT,
    opinion TEXT,
    UNIQUE (instance_id, task_no)
);
CREATE INDEX wf_tasks_assignee ON wf_tasks(assignee_id, status);
CREATE INDEX wf_tasks_due ON wf_tasks(status, due_on);

CREATE TABLE wf_task_candidates (
    task_id BIGINT NOT NULL REFERENCES wf_tasks(id),
    kind TEXT NOT NULL CHECK (kind IN ('unit', 'role')),
    value TEXT NOT NULL,
    PRIMARY KEY (task_id, kind, value)
);
CREATE INDEX wf_task_candidates_value ON wf_task_candidates(kind, value);

-- Files attached to an opinion (意见附件), by SM3 digest in the blob store.
CREATE TABLE wf_task_attachments (
    id {{ID}},
    task_id BIGINT NOT NULL REFERENCES wf_tasks(id),
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sm3 TEXT NOT NULL,
    uploaded_by BIGINT NOT NULL,
    uploaded_at BIGINT NOT NULL
);
CREATE INDEX wf_task_attachments_task ON wf_task_attachments(task_id);

CREATE TABLE wf_timers (
    instance_id BIGINT NOT NULL REFERENCES wf_instances(id),
    timer_no BIGINT NOT NULL,
    due_on TEXT NOT NULL,
    PRIMARY KEY (instance_id, timer_no)
);
CREATE INDEX wf_timers_due ON wf_timers(due_on);

INSERT INTO role_permissions (role_id, permission) SELECT id, 'workflow.define' FROM roles WHERE code = 'sys_admin';
INSERT INTO role_permissions (role_id, permission) SELECT id, 'workflow.start' FROM roles WHERE code IN ('staff', 'unit_admin');
