-- Notifications out. `notify_targets` mirrors the [[notify]] entries of the
-- configuration (rewritten at each start), so the audit log's own
-- transaction can queue a notification for every target that wants the event.
CREATE TABLE notify_targets (
    url TEXT PRIMARY KEY NOT NULL,
    -- The events it wants, as ",promoted,rolled_back," (matched with instr).
    events TEXT NOT NULL
);

-- The outbox: one row per audit event and target, delivered at least once
-- with the same id, retried with back-off until the receiver takes it.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    audit_id INTEGER NOT NULL REFERENCES audit_events(id),
    event TEXT NOT NULL,
    target TEXT NOT NULL,
    -- pending (not tried yet), failing (tried, retrying), delivered, dropped
    -- (its target left the configuration).
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT,
    UNIQUE (audit_id, event, target)
);
CREATE INDEX notifications_due ON notifications(state, next_attempt_at);
