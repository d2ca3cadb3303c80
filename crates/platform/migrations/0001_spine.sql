-- The platform spine: regions, units, staff, credentials, sessions, roles and grants,
-- the audit trail, the outbox, jobs and settings. Integers and flags are BIGINT, instants are
-- BIGINT milliseconds since the epoch (UTC), text is TEXT: the same on SQLite and PostgreSQL.

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE regions (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    parent_code TEXT REFERENCES regions(code),
    level BIGINT NOT NULL
);

CREATE TABLE units (
    id {{ID}},
    parent_id BIGINT REFERENCES units(id),
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    region_code TEXT REFERENCES regions(code),
    sort_order BIGINT NOT NULL DEFAULT 0,
    enabled BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX units_path ON units(path);
CREATE INDEX units_parent ON units(parent_id);

CREATE TABLE users (
    id {{ID}},
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    unit_id BIGINT NOT NULL REFERENCES units(id),
    position TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    enabled BIGINT NOT NULL DEFAULT 1,
    password_hash TEXT,
    password_changed_at BIGINT,
    must_change_password BIGINT NOT NULL DEFAULT 1,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    totp_secret TEXT,
    totp_enabled BIGINT NOT NULL DEFAULT 0,
    totp_last_step BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX users_unit ON users(unit_id);

CREATE TABLE password_history (
    id {{ID}},
    user_id BIGINT NOT NULL REFERENCES users(id),
    hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX password_history_user ON password_history(user_id);

CREATE TABLE recovery_codes (
    id {{ID}},
    user_id BIGINT NOT NULL REFERENCES users(id),
    code_hash TEXT NOT NULL,
    used_at BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes(user_id);

CREATE TABLE sessions (
    id {{ID}},
    token_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users(id),
    stage TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_tokens (
    id {{ID}},
    user_id BIGINT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE login_throttle (
    ip TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT
);

CREATE TABLE roles (
    id {{ID}},
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    admin_class TEXT NOT NULL,
    builtin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE role_permissions (
    role_id BIGINT NOT NULL REFERENCES roles(id),
    permission TEXT NOT NULL,
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE grants (
    id {{ID}},
    user_id BIGINT NOT NULL REFERENCES users(id),
    role_id BIGINT NOT NULL REFERENCES roles(id),
    scope TEXT NOT NULL,
    granted_by BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, role_id)
);
CREATE INDEX grants_role ON grants(role_id);

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_id BIGINT,
    actor_name TEXT NOT NULL,
    actor_unit TEXT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    result TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_actor ON audit_log(actor_id);

CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE outbox (
    id {{ID}},
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    dispatched_at BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX outbox_pending ON outbox(dispatched_at, next_attempt_at);

CREATE TABLE outbox_deliveries (
    event_id BIGINT NOT NULL REFERENCES outbox(id),
    handler TEXT NOT NULL,
    delivered_at BIGINT NOT NULL,
    PRIMARY KEY (event_id, handler)
);

CREATE TABLE jobs (
    id {{ID}},
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at BIGINT NOT NULL,
    locked_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_ready ON jobs(status, run_at);

-- Built-in roles. The three administrators (三员) are exclusive of each other; `staff` and
-- `unit_admin` are ordinary roles that a security administrator may grant with a data scope.
INSERT INTO roles (code, name, description, admin_class, builtin, created_at, updated_at) VALUES
    ('sys_admin', '系统管理员', 'Accounts, units and configuration', 'system', 1, 0, 0),
    ('sec_admin', '安全管理员', 'Roles and grants', 'security', 1, 0, 0),
    ('auditor', '安全审计员', 'Reads the audit trail', 'audit', 1, 0, 0),
    ('staff', '工作人员', 'Uses the workbench', 'none', 1, 0, 0),
    ('unit_admin', '单位管理员', 'Manages the accounts of a unit (delegated administration)', 'none', 1, 0, 0);
INSERT INTO role_permissions (role_id, permission) SELECT id, 'unit.read' FROM roles WHERE code IN ('sys_admin', 'sec_admin', 'auditor', 'staff', 'unit_admin');
INSERT INTO role_permissions (role_id, permission) SELECT id, 'unit.write' FROM roles WHERE code = 'sys_admin';
INSERT INTO role_permissions (role_id, permission) SELECT id, 'user.read' FROM roles WHERE code IN ('sys_admin', 'sec_admin', 'auditor', 'unit_admin');
INSERT INTO role_permissions (role_id, permission) SELECT id, 'user.write' FROM roles WHERE code IN ('sys_admin', 'unit_admin');
INSERT INTO role_permissions (role_id, permission) SELECT id, 'config.write' FROM roles WHERE code = 'sys_admin';
INSERT INTO role_permissions (role_id, permission) SELECT id, 'role.read' FROM roles WHERE code IN ('sec_admin', 'auditor');
INSERT INTO role_permissions (role_id, permission) SELECT id, 'role.write' FROM roles WHERE code = 'sec_admin';
INSERT INTO role_permissions (role_id, permission) SELECT id, 'grant.write' FROM roles WHERE code = 'sec_admin';
INSERT INTO role_permissions (role_id, permission) SELECT id, 'audit.read' FROM roles WHERE code = 'auditor';
INSERT INTO role_permissions (role_id, permission) SELECT id, 'workbench.use' FROM roles WHERE code IN ('sys_admin', 'sec_admin', 'auditor', 'staff', 'unit_admin');
