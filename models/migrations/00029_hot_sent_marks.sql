-- +goose Up
-- Fewer writes a campaign mail (issue 14.1; campaigns/dispatch/queue.go and models/recipients.go
-- say how the sender uses what follows; figures in docs/benchmarks.md, "Fourth round"):
--
-- 1. The "sent" mark becomes a HOT update. PostgreSQL updates a row in place, without a new
--    entry in every index, only when no index refers (by key, expression or predicate) to a
--    column whose value the update changes. The mark changes status, sent_at and lease_until;
--    until now status was in the predicate of campaign_recipients_open and sent_at a key of
--    campaign_recipients_sent_email, so each mark wrote three index entries. After this
--    migration no index refers to status, sent_at, lease_until or attempts, and next_attempt_at
--    only in a predicate that the mark does not change (NULL stays NULL) except for a mail
--    that was retried:
--    - the open rows of a run are found by number, not by a status predicate: each run keeps
--      open_from, a number below which every recipient of the run is finished or waits for a
--      retry (the dispatcher moves it on at each tick: models.AdvanceOpenFromSQL), the claims
--      walk (run_id, seq) from there, and the rows waiting for a retry (next_attempt_at set,
--      from the first temporary failure until their outcome) are in campaign_recipients_retry
--      (every outcome has cleared next_attempt_at since migration 00009, so that index holds
--      only rows still waiting: no clean-up needed);
--    - the bounce and complaint webhooks find the newest mail to an address through the member
--      who has it (members_email_key, then campaign_recipients_member): an index on the
--      recipients' address, even on lower(email) alone, cost the snapshot's insert 10-20 µs a
--      row, more than the rest of the row.
-- 2. The snapshot's insert checks no foreign key: each check was a query a row (and a lock on
--    the member's row), about as much again as the insert itself. The member is not referenced
--    any more, as the clicks and opens do not reference it (a mail is a fact kept when the member
--    row changes; only PurgeUnconfirmed deletes members, pending sign-ups nobody mails). A
--    run's recipients still go with the run: a statement trigger deletes them, as ON DELETE
--    CASCADE did (runs are deleted only before they start, and by benchmarks and tests).
-- 3. fillfactor 45 (was 60): a recipient row (about 170 bytes) is written three times within
--    seconds (the snapshot, the claim, the mark), and the claim's version must fit on the page
--    beside the row's first one for the update to be HOT; at 60 a fifth of the updates were
--    not. New pages only: the existing ones stay as they are (no rewrite).
--
-- Cost: ADD COLUMN with a constant default does not rewrite campaign_runs; dropping the
-- constraints and indexes is immediate. The two CREATE INDEX read campaign_recipients once each
-- and hold a SHARE lock meanwhile (recipients can be read, not written: runs neither start nor
-- record mails until the migration commits). Measured at 1M recipient rows (383 MB) on the
-- 2-core machine of docs/benchmarks.md with other work on it (load 6-7): 3.9 s for
-- (run_id, seq), 0.7 s for the retry index (a scan; it holds few rows), the rest under 0.1 s; so
-- about 40 s and 7 s at 10M rows. No table is rewritten.
ALTER TABLE campaign_runs ADD COLUMN open_from bigint NOT NULL DEFAULT 0;

CREATE INDEX campaign_recipients_run_seq ON campaign_recipients (run_id, seq);
CREATE INDEX campaign_recipients_retry ON campaign_recipients (run_id, seq) WHERE next_attempt_at IS NOT NULL;
DROP INDEX campaign_recipients_open;
DROP INDEX campaign_recipients_sent_email;

ALTER TABLE campaign_recipients
    DROP CONSTRAINT campaign_recipients_member_id_fkey,
    DROP CONSTRAINT campaign_recipients_run_id_fkey;
ALTER TABLE campaign_recipients SET (fillfactor = 45);

-- +goose StatementBegin
CREATE FUNCTION campaign_runs_delete_recipients() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM campaign_recipients WHERE run_id IN (SELECT id FROM gone);
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER campaign_runs_delete_recipients AFTER DELETE ON campaign_runs
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION campaign_runs_delete_recipients();

-- +goose Down
DROP TRIGGER campaign_runs_delete_recipients ON campaign_runs;
DROP FUNCTION campaign_runs_delete_recipients();
ALTER TABLE campaign_recipients
    ADD CONSTRAINT campaign_recipients_run_id_fkey FOREIGN KEY (run_id) REFERENCES campaign_runs (id) ON DELETE CASCADE,
    ADD CONSTRAINT campaign_recipients_member_id_fkey FOREIGN KEY (member_id) REFERENCES members (id);
CREATE INDEX campaign_recipients_sent_email ON campaign_recipients (lower(email), sent_at DESC)
    WHERE status = 'sent';
CREATE INDEX campaign_recipients_open ON campaign_recipients (run_id, seq) WHERE status IN ('queued', 'sending');
DROP INDEX campaign_recipients_retry;
DROP INDEX campaign_recipients_run_seq;
ALTER TABLE campaign_runs DROP COLUMN open_from;
