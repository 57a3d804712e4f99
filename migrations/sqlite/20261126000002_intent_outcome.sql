-- An intent whose push may have reached the remote without Envline knowing
-- (a timeout, a lost connection, a crash mid-way). Only such an intent is
-- credited when its change shows up on the remote later; one that certainly
-- failed (refused, never connected) never is.
ALTER TABLE intents ADD COLUMN unknown_outcome INTEGER NOT NULL DEFAULT 0;

-- Holds placed by rollbacks before `placed_by` existed.
UPDATE holds SET placed_by = 'reset'
WHERE kind = 'auto_promotion' AND (reason LIKE 'rolled back by %' OR reason LIKE 'reset by %');
