-- +goose Up
-- Receipt lines carry their sale's member_id, occurred_at and kind (issue 16, the bought_* segment
-- fields and GET /metrics/categories): a category is then one index range per sku over the
-- window, never a join to every transaction of the window (campaigns/segments/fields.go,
-- boughtLeaf; figures in docs/benchmarks.md, "Catalogue"). The copies are kept equal to the
-- transaction's by the database, so that no writer can forget them:
--   - the statements that write lines fill them (models.insertTransactionsSQL, the import's
--     mergeItemsSQL); any other INSERT that leaves occurred_at NULL has them looked up from its
--     transaction by transaction_items_copy_sale (one primary-key probe a line);
--   - a change of a transaction's member_id (a sale linked to a member who signs up later, a
--     refund inheriting its sale's member, a purged sign-up's sales going back to anonymous),
--     occurred_at or kind is copied to its lines by transactions_to_items, in the same
--     transaction as the change.
--
-- The back-fill writes the table anew with the copies (an INSERT … SELECT joining each line to
-- its transaction, then the primary key and the index built once) rather than an UPDATE of every
-- line, which would leave the table twice its size until new lines fill the dead half and
-- maintain the primary key row by row. It holds an exclusive lock on the lines throughout: run
-- it in a quiet hour. Cost at the issue's size (24,998,773 lines, 10,000,000 transactions; 2
-- cores, PostgreSQL 15 at its default settings, under nice 19 at load 4–12; docs/benchmarks.md
-- "Catalogue"): the lines' INSERT 63 s, the primary key 18 s, transaction_items_bought 29 s;
-- refunds_id below 72 s for 199,761 refunds and its two indexes 9 s: 3.2 minutes in all. The
-- table is 3,947 MB after (4,035 MB before: the new index is smaller than transaction_items_sku
-- was). The VACUUM that autovacuum then runs took 10 s on the lines and 61 s on transactions.
-- Writers wait until the migration commits (readers go on): lines a till wrote into the old table
-- during the copy would be dropped with it, and a sale linked to a member during the copy would
-- leave stale copies (the triggers below come later in this transaction). Replicas of the
-- previous version still taking sales while a new one migrates are such writers.
LOCK TABLE transactions, transaction_items IN EXCLUSIVE MODE;

CREATE TABLE transaction_items_new (
    transaction_id   bigint NOT NULL,
    line             int NOT NULL,
    sku              text NOT NULL,
    qty              int NOT NULL CHECK (qty > 0),
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    member_id        bigint,               -- the transaction's, NULL while it has no member
    occurred_at      timestamptz NOT NULL, -- the transaction's
    kind             text NOT NULL         -- the transaction's: sale or refund
);
-- LEFT JOIN: a line without its transaction (there should be none) stops the migration on the
-- NOT NULL of occurred_at rather than being dropped.
INSERT INTO transaction_items_new
SELECT i.transaction_id, i.line, i.sku, i.qty, i.unit_price_minor, t.member_id, t.occurred_at, t.kind
FROM transaction_items i LEFT JOIN transactions t ON t.id = i.transaction_id;
DROP TABLE transaction_items;
ALTER TABLE transaction_items_new RENAME TO transaction_items;
ALTER TABLE transaction_items ADD CONSTRAINT transaction_items_pkey PRIMARY KEY (transaction_id, line);

-- What bought_sku, bought_category and bought_brand read: the member's sale lines of a sku in a
-- time range, by index only (member_id and transaction_id included; the refund check needs the
-- sale's id). Anonymous sales and refunds are not in it: no rule counts them.
CREATE INDEX transaction_items_bought ON transaction_items (sku, occurred_at) INCLUDE (member_id, transaction_id)
    WHERE kind = 'sale' AND member_id IS NOT NULL;
-- The new table's statistics now; autovacuum then sets its visibility map (index-only scans).
ANALYZE transaction_items;

-- +goose StatementBegin
CREATE FUNCTION transaction_items_copy_sale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT t.member_id, t.occurred_at, t.kind INTO NEW.member_id, NEW.occurred_at, NEW.kind
    FROM transactions t WHERE t.id = NEW.transaction_id;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
-- WHEN: the writers that fill the copies themselves do not call the function at all.
CREATE TRIGGER transaction_items_copy_sale BEFORE INSERT ON transaction_items
    FOR EACH ROW WHEN (NEW.occurred_at IS NULL) EXECUTE FUNCTION transaction_items_copy_sale();

-- +goose StatementBegin
CREATE FUNCTION transactions_to_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE transaction_items SET member_id = NEW.member_id, occurred_at = NEW.occurred_at, kind = NEW.kind
    WHERE transaction_id = NEW.id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
-- Only rows whose copied columns changed call it: linking, purging, and edits by hand.
CREATE TRIGGER transactions_to_items AFTER UPDATE OF member_id, occurred_at, kind ON transactions
    FOR EACH ROW WHEN (OLD.member_id IS DISTINCT FROM NEW.member_id OR OLD.occurred_at <> NEW.occurred_at OR OLD.kind <> NEW.kind)
    EXECUTE FUNCTION transactions_to_items();

-- "Was this line's sale refunded before the as-of time?" (lineNotRefunded in fields.go): a
-- refund names its sale by the till's ids (store_id, refunds_txn_id); it now also keeps the
-- sale's row id, refunds_id, so that the sales refunded before a time are one index-only scan
-- of the few refunds (transactions_refunded) instead of a probe of the sale for each refund
-- (199,761 at the issue's size: 10.6 s of a 15 s count). It is looked up when the refund is
-- written or its refunds_txn_id changes; a refund whose sale was not there yet (a refund before
-- its sale in one batch) or written by anything else keeps NULL, and lineNotRefunded reaches
-- those few by the till's ids instead (transactions_unresolved_refunds), so the answer never
-- depends on refunds_id being there.
ALTER TABLE transactions ADD COLUMN refunds_id bigint;
UPDATE transactions r SET refunds_id = s.id
FROM transactions s
WHERE r.refunds_txn_id IS NOT NULL AND s.store_id = r.store_id AND s.txn_id = r.refunds_txn_id;
CREATE INDEX transactions_refunded ON transactions (refunds_id) INCLUDE (occurred_at)
    WHERE kind = 'refund' AND refunds_id IS NOT NULL;
CREATE INDEX transactions_unresolved_refunds ON transactions (store_id, refunds_txn_id) INCLUDE (occurred_at)
    WHERE kind = 'refund' AND refunds_txn_id IS NOT NULL AND refunds_id IS NULL;

-- +goose StatementBegin
CREATE FUNCTION transactions_refunds_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.refunds_id := (SELECT s.id FROM transactions s WHERE s.store_id = NEW.store_id AND s.txn_id = NEW.refunds_txn_id);
    RETURN NEW;
END
$$;
-- +goose StatementEnd
-- The writers of refunds fill refunds_id themselves (models.insertTransactionsSQL, the import's
-- mergeRefundsSQL and checkDirectRefunds); this keeps it right when a refund is edited to name
-- another sale. Not on INSERT: a BEFORE INSERT row trigger on transactions would make the
-- import's COPY insert row by row.
CREATE TRIGGER transactions_refunds_id_changed BEFORE UPDATE OF store_id, refunds_txn_id ON transactions
    FOR EACH ROW EXECUTE FUNCTION transactions_refunds_id();

-- +goose Down
DROP TRIGGER transactions_refunds_id_changed ON transactions;
DROP FUNCTION transactions_refunds_id();
DROP INDEX transactions_unresolved_refunds;
DROP INDEX transactions_refunded;
ALTER TABLE transactions DROP COLUMN refunds_id;
DROP TRIGGER transactions_to_items ON transactions;
DROP FUNCTION transactions_to_items();
DROP TRIGGER transaction_items_copy_sale ON transaction_items;
DROP FUNCTION transaction_items_copy_sale();
DROP INDEX transaction_items_bought;
ALTER TABLE transaction_items DROP COLUMN member_id, DROP COLUMN occurred_at, DROP COLUMN kind;
CREATE INDEX transaction_items_sku ON transaction_items (sku, transaction_id);
