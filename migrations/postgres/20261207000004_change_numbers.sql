-- The change feed between replicas: every change any replica makes is
-- numbered from this sequence as it is announced (NOTIFY envline_changes),
-- so every replica's live pages carry the same numbers and a browser that
-- reconnects to another replica can say what it saw (Last-Event-ID).
-- PostgreSQL's alone: on SQLite there is one server, which numbers its own.
CREATE SEQUENCE envline_change_numbers;
