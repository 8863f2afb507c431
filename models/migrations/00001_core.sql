-- +goose Up
-- Core schema: stores, API keys, club members with their consent history, and the tills'
-- transactions. Money is always an integer number of minor units.

CREATE TABLE stores (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code       text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    name       text NOT NULL,
    timezone   text NOT NULL,
    currency   char(3) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Only a SHA-256 of each token is kept: tokens are 256 random bits, so a slow hash buys nothing.
CREATE TABLE api_keys (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL,
    role       text NOT NULL CHECK (role IN ('register', 'marketer', 'admin')),
    store_id   bigint REFERENCES stores (id),
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CHECK ((role = 'register') = (store_id IS NOT NULL))
);

-- status: pending (signed up, email not confirmed), active, erased (personal data removed).
-- marketing_consent is the current state; consents keeps every change with its evidence.
CREATE TABLE members (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card              text NOT NULL UNIQUE CHECK (card ~ '^[0-9]{13}$'),
    email             text,
    phone             text,
    name              text NOT NULL DEFAULT '',
    home_store_id     bigint REFERENCES stores (id),
    status            text NOT NULL CHECK (status IN ('pending', 'active', 'erased')),
    marketing_consent text NOT NULL DEFAULT 'none'
                      CHECK (marketing_consent IN ('none', 'pending', 'confirmed', 'withdrawn')),
    source            text NOT NULL,
    joined_at         timestamptz NOT NULL DEFAULT now(),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX members_email_key ON members (lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX members_phone_key ON members (phone) WHERE phone IS NOT NULL;
CREATE INDEX members_home_store ON members (home_store_id);
CREATE INDEX members_created_at ON members (created_at);

CREATE TABLE consents (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id    bigint NOT NULL REFERENCES members (id),
    purpose      text NOT NULL,
    granted      boolean NOT NULL,
    source       text NOT NULL,
    text_version text NOT NULL DEFAULT '',
    ip           inet,
    user_agent   text NOT NULL DEFAULT '',
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consents_member ON consents (member_id, recorded_at);

-- (store_id, txn_id) is the till's own id and the idempotency key; content_hash tells a replay
-- (same content) from a conflict (same id, other content). member_card/email/phone keep what the
-- customer presented, so a sale on a card nobody has registered yet is linked when it is.
CREATE TABLE transactions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    store_id       bigint NOT NULL REFERENCES stores (id),
    txn_id         text NOT NULL,
    register       text NOT NULL DEFAULT '',
    kind           text NOT NULL CHECK (kind IN ('sale', 'refund')),
    occurred_at    timestamptz NOT NULL,
    amount_minor   bigint NOT NULL CHECK (amount_minor > 0),
    currency       char(3) NOT NULL,
    member_id      bigint REFERENCES members (id),
    member_card    text,
    member_email   text,
    member_phone   text,
    refunds_txn_id text,
    content_hash   bytea NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (store_id, txn_id)
);
CREATE INDEX transactions_member ON transactions (member_id, occurred_at) WHERE member_id IS NOT NULL;
-- Partial indexes: only unmatched sales are in them, so linking a new member is an index probe
-- and matched sales cost nothing extra to insert.
CREATE INDEX transactions_unmatched_card ON transactions (member_card)
    WHERE member_id IS NULL AND member_card IS NOT NULL;
CREATE INDEX transactions_unmatched_email ON transactions (lower(member_email))
    WHERE member_id IS NULL AND member_email IS NOT NULL;
CREATE INDEX transactions_unmatched_phone ON transactions (member_phone)
    WHERE member_id IS NULL AND member_phone IS NOT NULL;
CREATE INDEX transactions_unmatched_refund ON transactions (store_id, refunds_txn_id)
    WHERE member_id IS NULL AND refunds_txn_id IS NOT NULL;

-- No foreign key to transactions, on purpose: items are only ever inserted by the statement that
-- inserts their transaction, joined on the ids it returns, and transactions are never deleted
-- (erasing a member keeps the purchases). The key's check locked the parent row once per item
-- and cost a fifth of batch throughput (docs/benchmarks.md).
CREATE TABLE transaction_items (
    transaction_id   bigint NOT NULL,
    line             int NOT NULL,
    sku              text NOT NULL,
    qty              int NOT NULL CHECK (qty > 0),
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    PRIMARY KEY (transaction_id, line)
);

-- +goose Down
DROP TABLE transaction_items;
DROP TABLE transactions;
DROP TABLE consents;
DROP TABLE members;
DROP TABLE api_keys;
DROP TABLE stores;
