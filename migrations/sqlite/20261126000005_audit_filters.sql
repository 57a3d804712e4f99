-- The Audit page filters by actor and by action as well as by environment;
-- each reads newest first (by id).
CREATE INDEX audit_events_actor ON audit_events(actor, id);
CREATE INDEX audit_events_action ON audit_events(action, id);
