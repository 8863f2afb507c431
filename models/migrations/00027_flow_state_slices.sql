-- +goose Up
-- A state trigger (lapsed, p_alive_below, birthday) is evaluated over the members in slices of
-- consecutive ids, one slice a tick, so that a tick's cost does not grow with the club
-- (issue 11: at most 2 s a tick at 1M members). state_cursor is the last member id of the slices
-- done in the pass under way; NULL: no pass under way. states_checked_at is when the latest
-- pass started (the next starts StateEvery after it).
ALTER TABLE flows ADD COLUMN state_cursor bigint;
-- The same for the rounds that look at every member on the way for a reason to leave
-- (exits_checked_at: when the latest round started); exits_since is when the round before it
-- started: every entry was looked at in full since then.
ALTER TABLE flows ADD COLUMN exits_cursor bigint, ADD COLUMN exits_since timestamptz;

-- +goose Down
ALTER TABLE flows DROP COLUMN state_cursor, DROP COLUMN exits_cursor, DROP COLUMN exits_since;
