-- +goose Up
-- Faster sending (issue 14.1; campaigns/dispatch/queue.go says how these are used).
--
-- 1. What a mail needs of its member is copied into the recipient row when the row is made (the
--    run's snapshot, a flow's mail step: models.RecipientSnapshot), so that a claim reads one
--    table instead of joining members, stores, tiers and the points ledger for every batch.
--    Whether the member may still be mailed is checked again at the claim (a cheap anti-join).
-- 2. seq numbers the recipients as they are made (one sequence for all runs): a sender claims
--    the open rows after the highest number it has claimed, in seq order, instead of scanning
--    past the rows being sent at every claim (and looks behind that point every few seconds).
-- 3. A claimed recipient stays 'queued' with a lease (lease_until set): a claim and a renewal
--    change only columns no index covers, so PostgreSQL updates the row in place (HOT) where its
--    page has room (fillfactor). 'sending' rows (claimed before this migration) still count.
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

-- The open rows of a run in seq order: where the claims look, and whether a run has any left.
DROP INDEX campaign_recipients_open;
CREATE INDEX campaign_recipients_open ON campaign_recipients (run_id, seq) WHERE status IN ('queued', 'sending');

-- +goose Down
DROP INDEX campaign_recipients_open;
CREATE INDEX campaign_recipients_open ON campaign_recipients (run_id) WHERE status IN ('queued', 'sending');
ALTER TABLE campaign_recipients RESET (fillfactor);
ALTER TABLE campaign_recipients
    DROP COLUMN seq, DROP COLUMN card, DROP COLUMN name, DROP COLUMN home_store, DROP COLUMN language,
    DROP COLUMN tier, DROP COLUMN discount, DROP COLUMN points, DROP COLUMN stamp_cost;
