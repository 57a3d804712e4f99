-- I5: the anchors Envline pushed, newest last. The remote's anchor must
-- descend from the last one: one that does not was rewound (or deleted),
-- which `audit verify` and the Admin page report, and which Envline does
-- not build on.
CREATE TABLE anchors_pushed (
    id        INTEGER PRIMARY KEY,
    commit_id TEXT NOT NULL,
    event_id  INTEGER NOT NULL,
    pushed_at TEXT NOT NULL
);
