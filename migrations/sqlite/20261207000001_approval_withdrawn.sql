-- I4: an approval counts only while its approver may approve. Removing a
-- person's role (or the person) withdraws their approvals of requests still
-- waiting; the request shows why, and a new approval after the role is
-- granted again replaces the withdrawn one.
ALTER TABLE approvals ADD COLUMN withdrawn_at TEXT;
ALTER TABLE approvals ADD COLUMN withdrawn_reason TEXT;
