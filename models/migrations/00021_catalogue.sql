-- +goose Up
-- The product catalogue (issue 16): what a receipt line's sku is. Lines keep their sku and have
-- no foreign key to products, on purpose: a till sells what it scans, and a line whose sku is
-- not (yet) in the catalogue still counts everywhere (bought_sku, spend, orders). Categories and
-- brands are free text, stored as given and compared lower-cased (lower(category) = lower($1)).
CREATE TABLE products (
    sku         text PRIMARY KEY,
    name        text NOT NULL,
    category    text NOT NULL DEFAULT '',
    brand       text NOT NULL DEFAULT '',
    price_minor bigint NOT NULL CHECK (price_minor >= 0),
    cost_minor  bigint CHECK (cost_minor >= 0), -- NULL: cost not known
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- The segment fields bought_category and bought_brand start from the few skus of a category or
-- brand (campaigns/segments/fields.go, boughtLeaf).
CREATE INDEX products_category ON products (lower(category));
CREATE INDEX products_brand ON products (lower(brand));

-- From those skus to their receipt lines: an index-only scan on (sku, transaction_id), then the
-- transactions by primary key. Measured plan in campaigns/segments/fields.go.
CREATE INDEX transaction_items_sku ON transaction_items (sku, transaction_id);

-- "Was this sale refunded?": one probe per bought line's sale, for refunds that name their sale.
-- transactions_unmatched_refund only holds refunds without a member.
CREATE INDEX transactions_refunds ON transactions (store_id, refunds_txn_id) WHERE refunds_txn_id IS NOT NULL;

-- +goose Down
DROP INDEX transactions_refunds;
DROP INDEX transaction_items_sku;
DROP TABLE products;
