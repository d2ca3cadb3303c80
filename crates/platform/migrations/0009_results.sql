-- Result documents (结果文书) and their delivery (送达); cases registered at a service-hall
-- window (窗口收件) through the API, which never pass through public intake.

ALTER TABLE approval_cases ADD COLUMN result_sm3 TEXT;
ALTER TABLE approval_cases ADD COLUMN result_name TEXT;
ALTER TABLE approval_cases ADD COLUMN delivered_at BIGINT;
ALTER TABLE approval_cases ADD COLUMN channel TEXT NOT NULL DEFAULT 'online';

ALTER TABLE intake_applications ADD COLUMN result_no TEXT;
ALTER TABLE intake_applications ADD COLUMN result_name TEXT;
ALTER TABLE intake_applications ADD COLUMN result_sm3 TEXT;
ALTER TABLE intake_applications ADD COLUMN result_size BIGINT;
ALTER TABLE intake_applications ADD COLUMN result_opened_at BIGINT;

-- Window registrations number apart from online submissions (JC… vs JH…).
CREATE TABLE case_numbers (
    day TEXT PRIMARY KEY,
    last BIGINT NOT NULL
);

-- The supervision dashboard counts open tasks per holder, queue and deadline: grouped from
-- this index alone, without reading the table.
CREATE INDEX wf_tasks_open_counts ON wf_tasks(status, assignee_id, queue_unit, due_on);
