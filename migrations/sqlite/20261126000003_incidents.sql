-- Hotfix mode (S4): at most one incident runs at a time. While it is active
-- or resolved, the pipeline's root is its hotfix branch; merging it back
-- into main ends it.
CREATE TABLE incidents (
    id          INTEGER PRIMARY KEY,
    incident    TEXT NOT NULL UNIQUE,  -- the incident's id, as people name it (INC-42)
    branch      TEXT NOT NULL,         -- hotfix/<incident>
    production  TEXT NOT NULL,         -- the environment it started from
    fork        TEXT NOT NULL,         -- that environment's commit when it started
    reason      TEXT NOT NULL,
    state       TEXT NOT NULL,         -- active, resolved, merged
    started_by  TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    resolved_by TEXT,
    resolved_at TEXT,
    merged_by   TEXT,
    merged_at   TEXT,
    kept        TEXT NOT NULL DEFAULT '[]', -- JSON: production environments left where they were
    mapping     TEXT NOT NULL DEFAULT '[]'  -- JSON: main's commits rebased onto the fix, old -> new
);
CREATE UNIQUE INDEX incidents_one_running ON incidents((state IN ('active', 'resolved'))) WHERE state IN ('active', 'resolved');
