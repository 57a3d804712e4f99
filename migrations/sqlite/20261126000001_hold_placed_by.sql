-- Who may release a hold depends on what placed it: a person's hold or
-- freeze needs the hold permission; the auto-promotion hold a rollback or
-- reset places needs the role that may reset the environment.
ALTER TABLE holds ADD COLUMN placed_by TEXT NOT NULL DEFAULT 'hold'; -- hold, reset
