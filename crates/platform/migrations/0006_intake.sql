-- Public intake (外网受理): applications as citizens and enterprises fill them in, their uploaded
-- materials and the status history they see. Internal processing has its own tables; the two
-- meet only through zone messages (see crates/approval/src/zone.rs).

CREATE TABLE intake_applications (
    id {{ID}},
    number TEXT UNIQUE,
    query_code TEXT,
    item_id BIGINT NOT NULL REFERENCES approval_items(id),
    account_id BIGINT NOT NULL REFERENCES public_accounts(id),
    form TEXT NOT NULL,
    status TEXT NOT NULL,
    status_note TEXT NOT NULL DEFAULT '',
    due_on TEXT,
    rating BIGINT,
    rating_comment TEXT,
    created_at BIGINT NOT NULL,
    submitted_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX intake_applications_account ON intake_applications(account_id);

CREATE TABLE intake_materials (
    id {{ID}},
    application_id BIGINT NOT NULL REFERENCES intake_applications(id),
    material_index BIGINT NOT NULL,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sm3 TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    sent BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX intake_materials_application ON intake_materials(application_id);

CREATE TABLE intake_events (
    id {{ID}},
    application_id BIGINT NOT NULL REFERENCES intake_applications(id),
    at BIGINT NOT NULL,
    status TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX intake_events_application ON intake_events(application_id);

CREATE TABLE application_numbers (
    day TEXT PRIMARY KEY,
    last BIGINT NOT NULL
);
