-- Envline's state. The git repository is the truth for where environments
-- are; this database holds who did what, the gates' evidence, and the
-- hash-chained audit log.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT,            -- argon2 PHC string; NULL: token-only account
    created_at    TEXT NOT NULL
);

CREATE TABLE user_roles (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role    TEXT NOT NULL,         -- viewer, promoter, tester, approver, incident-commander, admin
    scope   TEXT NOT NULL,         -- environment glob, '*' for all
    PRIMARY KEY (user_id, role, scope)
);

CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    digest     TEXT NOT NULL UNIQUE, -- SHA-256 of the token, hex
    label      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE sessions (
    digest     TEXT PRIMARY KEY,     -- SHA-256 of the cookie value, hex
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE promotion_requests (
    id                 INTEGER PRIMARY KEY,
    kind               TEXT NOT NULL,  -- promote, cherry_pick
    environment        TEXT NOT NULL,
    source             TEXT NOT NULL,  -- the environment or root the commit came from
    from_commit        TEXT,           -- the environment's head when requested
    to_commit          TEXT NOT NULL,  -- the candidate (for a cherry-pick: the picked commit)
    requested_by       TEXT NOT NULL,
    reason             TEXT NOT NULL,
    required_approvals INTEGER NOT NULL,
    state              TEXT NOT NULL,  -- awaiting_approval, done, rejected, failed, cancelled
    state_reason       TEXT,
    result_commit      TEXT,           -- where the environment ended up
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX promotion_requests_open ON promotion_requests(state, environment);

CREATE TABLE approvals (
    request_id INTEGER NOT NULL REFERENCES promotion_requests(id),
    approver   TEXT NOT NULL,
    decision   TEXT NOT NULL,          -- approve, reject
    comment    TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (request_id, approver)
);

CREATE TABLE verifications (
    id          INTEGER PRIMARY KEY,
    environment TEXT NOT NULL,
    commit_id   TEXT NOT NULL,
    status      TEXT NOT NULL,         -- passed, failed, pending
    url         TEXT,
    summary     TEXT,
    recorded_by TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX verifications_by_commit ON verifications(environment, commit_id, id);

CREATE TABLE holds (
    id          INTEGER PRIMARY KEY,
    environment TEXT NOT NULL,
    kind        TEXT NOT NULL,         -- promotion (blocks all), auto_promotion (blocks only automatic ones)
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    starts_at   TEXT,                  -- a freeze window; NULL: from now
    ends_at     TEXT,                  -- NULL: until released
    released_by TEXT,
    released_at TEXT
);
CREATE INDEX holds_active ON holds(environment, released_at);

-- The last tip Envline saw or set for each branch, to detect direct pushes (I5).
CREATE TABLE observed_tips (
    branch      TEXT PRIMARY KEY,
    commit_id   TEXT NOT NULL,
    observed_at TEXT NOT NULL
);

-- Written before any ref moves, finished after; reconciled at start-up.
CREATE TABLE intents (
    id          INTEGER PRIMARY KEY,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    payload     TEXT NOT NULL,         -- JSON: ref changes, audit events to write, request to finish
    state       TEXT NOT NULL,         -- pending, done, failed
    error       TEXT,
    created_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX intents_pending ON intents(state);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    environment TEXT,
    old_commit  TEXT,
    new_commit  TEXT,
    reason      TEXT NOT NULL,
    details     TEXT NOT NULL,         -- JSON object: approvals, request, intent, ...
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_events_env ON audit_events(environment, id);

CREATE TRIGGER audit_events_append_only_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_events_append_only_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
