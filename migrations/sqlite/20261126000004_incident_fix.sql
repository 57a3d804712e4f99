-- The fix a resolved incident shipped: the hotfix branch's commit that was in
-- production when it was resolved. Merge-back rebases main onto exactly
-- this commit, whatever happens to the branch afterwards.
ALTER TABLE incidents ADD COLUMN fix TEXT;
