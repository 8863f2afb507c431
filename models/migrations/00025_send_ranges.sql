-- +goose Up
-- Faster sending (issue 14.1; campaigns/dispatch/queue.go says how these are used).
--
-- 1. What a mail needs of its member is copied into the recipient row when the row is made (the
--    run's snapshot, a flow's mail step: models.RecipientSnapshot), so that a claim reads one
--    table instead of joining members, stores, tiers and the points ledger for every batch.
--    Whether the member may still be mailed is checked again at the claim (a cheap anti-join).
-- 2. seq numbers the recipients (one sequence for all runs, so each run's rows are numbered in
--    the order they were made); a run's claimed_seq is how far its recipients have been handed
--    out: a worker claims the next range of a run by moving it (claimed_from is where its range
--    started), so that claims neither lock nor skip each other's rows one by one.
-- 3. A claimed recipient stays 'queued' with a lease (lease_until set): a claim and a renewal
--    change only columns no index covers, so PostgreSQL updates the row in place (HOT), on a page
--    with room for it (fillfactor). 'sending' rows (claimed before this migration) still count.
CREATE SEQUENCE campaign_recipients_seq;
ALTER TABLE campaign_recipients
    ADD COLUMN seq        bigint,
    ADD COLUMN card       text,
    ADD COLUMN name       text,
    ADD COLUMN home_store text,
    ADD COLUMN language   text,
    ADD COLUMN tier       text,
    ADD COLUMN discount   float8,
    ADD COLUMN points     int,
    ADD COLUMN stamp_cost int;
ALTER TABLE campaign_recipients ALTER COLUMN seq SET DEFAULT nextval('campaign_recipients_seq');
ALTER SEQUENCE campaign_recipients_seq OWNED BY campaign_recipients.seq;
ALTER TABLE campaign_recipients SET (fillfactor = 60);

-- Rows still to send get a number and their snapshot (older, finished rows need neither); the
-- tier as of now in UTC (the server's REGULARS_TIMEZONE is not known here).
UPDATE campaign_recipients cr SET seq = nextval('campaign_recipients_seq'),
    card = m.card, name = m.name, language = m.language,
    home_store = (SELECT s.code FROM stores s WHERE s.id = m.home_store_id),
    tier = (SELECT mt.name FROM member_tier(m.id, now(), 'UTC') mt),
    discount = (SELECT mt.discount_percent FROM member_tier(m.id, now(), 'UTC') mt),
    points = (SELECT coalesce(sum(l.points), 0) FROM points_ledger l WHERE l.member_id = m.id),
    stamp_cost = (SELECT min(r.cost_points) FROM reward_program p JOIN rewards r ON r.active
                  WHERE p.points_per_visit > 0 AND p.points_per_major_unit = 0)
FROM members m
WHERE m.id = cr.member_id AND cr.status IN ('queued', 'sending');

-- The open rows of a run in seq order: the claims' ranges, and whether a run has any left.
DROP INDEX campaign_recipients_open;
CREATE INDEX campaign_recipients_open ON campaign_recipients (run_id, seq) WHERE status IN ('queued', 'sending');

ALTER TABLE campaign_runs
    ADD COLUMN claimed_seq  bigint NOT NULL DEFAULT 0,
    ADD COLUMN claimed_from bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE campaign_runs DROP COLUMN claimed_from, DROP COLUMN claimed_seq;
DROP INDEX campaign_recipients_open;
CREATE INDEX campaign_recipients_open ON campaign_recipients (run_id) WHERE status IN ('queued', 'sending');
ALTER TABLE campaign_recipients RESET (fillfactor);
ALTER TABLE campaign_recipients
    DROP COLUMN seq, DROP COLUMN card, DROP COLUMN name, DROP COLUMN home_store, DROP COLUMN language,
    DROP COLUMN tier, DROP COLUMN discount, DROP COLUMN points, DROP COLUMN stamp_cost;
