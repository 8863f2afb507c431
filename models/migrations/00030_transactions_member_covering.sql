-- +goose NO TRANSACTION
-- +goose Up
-- transactions_member carries each transaction's kind and amount (INCLUDE), so the metrics run's
-- member summary (jobs/metrics/model.go, summarySQL) reads every member transaction in (member,
-- time) order from the index alone: no sequential scan of the whole table (1.7 GB at 10M
-- transactions; the index is 355 MB) and no sort of 7.5M rows on disk, in one process instead of
-- three (docs/benchmarks.md, "Session 6"). Every other reader of the index (member page, tiers,
-- segments, flows, tracking) uses the same key columns and is unchanged. Rows on pages a till
-- wrote since the table's last VACUUM are read from the heap as well (the metrics run vacuums
-- the table first, jobs/metrics vacuumTransactions); the planner counts those pages and falls
-- back to the scan and the sort when too few are all-visible.
--
-- Built CONCURRENTLY beside the old index and then swapped by name, outside a transaction, so
-- that tills keep writing throughout (a plain CREATE INDEX would hold their inserts for the whole
-- build). Cost at 1M members / 10M transactions (7.5M with a member; 2 cores, PostgreSQL 15 at its
-- defaults, load 4.5): 12.9 s for the whole migration (a plain CREATE INDEX took 12.4 s); the
-- index is 355 MB, the old one 297 MB. Each step can be run again: a run stopped half way (an
-- invalid index left by a failed concurrent build, or the old index already dropped) is finished
-- by the next.
DROP INDEX CONCURRENTLY IF EXISTS transactions_member_next;
CREATE INDEX CONCURRENTLY transactions_member_next ON transactions (member_id, occurred_at)
    INCLUDE (kind, amount_minor) WHERE member_id IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS transactions_member;
ALTER INDEX transactions_member_next RENAME TO transactions_member;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS transactions_member_next;
CREATE INDEX CONCURRENTLY transactions_member_next ON transactions (member_id, occurred_at)
    WHERE member_id IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS transactions_member;
ALTER INDEX transactions_member_next RENAME TO transactions_member;
