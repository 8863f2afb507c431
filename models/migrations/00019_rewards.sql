-- +goose Up
-- Rewards (issue 12): points, stamp cards and vouchers at the till (product.md, "Rewards").

-- The one program of the installation: no row, no points. A visit is one sale of at least
-- min_amount (minor units); a stamp card is points_per_visit 1 and a reward that costs 10.
CREATE TABLE reward_program (
    id                    boolean PRIMARY KEY DEFAULT true CHECK (id),
    points_per_visit      int NOT NULL DEFAULT 0 CHECK (points_per_visit BETWEEN 0 AND 1000000),
    points_per_major_unit numeric(12, 4) NOT NULL DEFAULT 0 CHECK (points_per_major_unit BETWEEN 0 AND 1000000),
    min_amount            bigint NOT NULL DEFAULT 0 CHECK (min_amount >= 0),
    -- NULL: points never expire.
    expire_after_days     int CHECK (expire_after_days BETWEEN 1 AND 36500),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rewards (
    code             text PRIMARY KEY CHECK (code ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    name             text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    cost_points      int NOT NULL CHECK (cost_points BETWEEN 1 AND 100000000),
    discount_minor   bigint CHECK (discount_minor > 0),
    discount_percent numeric(5, 2) CHECK (discount_percent > 0 AND discount_percent <= 100),
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((discount_minor IS NULL) <> (discount_percent IS NULL))
);

-- Single-use codes issued to one member (by an admin, a campaign or a flow step).
CREATE TABLE vouchers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL UNIQUE,
    member_id   bigint NOT NULL REFERENCES members (id),
    reward_code text NOT NULL REFERENCES rewards (code),
    expires_at  timestamptz NOT NULL,
    issued_by   text NOT NULL CHECK (issued_by IN ('admin', 'campaign', 'flow')),
    -- The campaign run or flow entry that issued it, so that a retried send issues once.
    source_key  text UNIQUE,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vouchers_member ON vouchers (member_id) WHERE used_at IS NULL;
-- source_key is '<issuer>:<id>:…' (a flow's: 'flow:<flow id>:<entry id>:<step>'): reports count
-- by its prefix.
CREATE INDEX vouchers_source ON vouchers (source_key text_pattern_ops);

-- A redemption at a till. (store_id, txn_id) is the idempotency key exactly as for transactions:
-- the same id with the same content is a replay, with other content a conflict.
CREATE TABLE redemptions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    store_id         bigint NOT NULL REFERENCES stores (id),
    txn_id           text NOT NULL,
    member_id        bigint NOT NULL REFERENCES members (id),
    reward_code      text NOT NULL REFERENCES rewards (code),
    voucher_id       bigint REFERENCES vouchers (id),
    points_spent     int NOT NULL CHECK (points_spent >= 0),
    discount_minor   bigint,
    discount_percent numeric(5, 2),
    -- The sale it was redeemed against, as the till names it.
    transaction_ref  text,
    content_hash     bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    cancelled_at     timestamptz,
    UNIQUE (store_id, txn_id)
);
CREATE INDEX redemptions_member ON redemptions (member_id);
-- A voucher is used by one standing redemption; a cancelled one keeps naming it.
CREATE UNIQUE INDEX redemptions_voucher ON redemptions (voucher_id) WHERE voucher_id IS NOT NULL AND cancelled_at IS NULL;

-- The points ledger: append-only (a trigger refuses UPDATE and DELETE). A member's balance is
-- the sum of points. earned (+, from a sale, expiring at expires_at), refunded (−, from a
-- refund), spent (−, a redemption), cancelled (+, a redemption cancelled), expired (−, the
-- nightly expiry: the oldest credits go first).
CREATE TABLE points_ledger (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id      bigint NOT NULL REFERENCES members (id),
    kind           text NOT NULL CHECK (kind IN ('earned', 'refunded', 'spent', 'cancelled', 'expired')),
    points         int NOT NULL,
    transaction_id bigint REFERENCES transactions (id),
    redemption_id  bigint REFERENCES redemptions (id),
    expires_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (CASE kind WHEN 'earned' THEN points > 0 WHEN 'cancelled' THEN points > 0 ELSE points < 0 END),
    CHECK ((kind IN ('earned', 'refunded')) = (transaction_id IS NOT NULL)),
    CHECK ((kind IN ('spent', 'cancelled')) = (redemption_id IS NOT NULL)),
    CHECK (expires_at IS NULL OR kind = 'earned')
);
-- A transaction credits or debits once, a redemption is spent once and cancelled once: a
-- replayed sale or a re-uploaded batch can never credit twice.
CREATE UNIQUE INDEX points_ledger_transaction ON points_ledger (transaction_id) WHERE transaction_id IS NOT NULL;
CREATE UNIQUE INDEX points_ledger_redemption ON points_ledger (redemption_id, kind) WHERE redemption_id IS NOT NULL;
CREATE INDEX points_ledger_member ON points_ledger (member_id, created_at);
CREATE INDEX points_ledger_expiring ON points_ledger (expires_at) WHERE kind = 'earned' AND expires_at IS NOT NULL;
-- Recent credits, for the flow trigger reward_affordable.
CREATE INDEX points_ledger_credits ON points_ledger (created_at) WHERE kind IN ('earned', 'cancelled');

-- +goose StatementBegin
CREATE FUNCTION points_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'points_ledger is append-only: % refused', TG_OP;
END $$;
-- +goose StatementEnd
CREATE TRIGGER points_ledger_append_only BEFORE UPDATE OR DELETE ON points_ledger
    FOR EACH ROW EXECUTE FUNCTION points_ledger_append_only();

-- currency_minor_digits is ISO 4217's number of minor digits (JPY 0, NOK 2, KWD 3; 0 for the
-- codes without a minor unit, gold, funds and testing codes); Go's templates.MinorDigits
-- (github.com/rmg/iso4217) says the same for every code (handlers' TestMinorDigitsAgreeInSQLAndGo).
-- +goose StatementBegin
CREATE FUNCTION currency_minor_digits(code text) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE
        WHEN code IN ('BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF', 'UGX',
                      'UYI', 'VND', 'VUV', 'XAF', 'XOF', 'XPF',
                      'XAG', 'XAU', 'XBA', 'XBB', 'XBC', 'XBD', 'XDR', 'XPD', 'XPT', 'XSU', 'XTS',
                      'XUA', 'XXX') THEN 0
        WHEN code IN ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND') THEN 3
        WHEN code IN ('CLF', 'UYW') THEN 4
        ELSE 2 END $$;
-- +goose StatementEnd

-- ean13 appends the EAN-13 check digit (weights 1, 3, 1, 3, … from the left) to twelve digits,
-- as models.WithCheckDigit does (a test compares them).
-- +goose StatementBegin
CREATE FUNCTION ean13(first12 text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT first12 || ((10 - (SELECT sum(substr(first12, i, 1)::int * CASE WHEN i % 2 = 0 THEN 3 ELSE 1 END)
                                     FROM generate_series(1, 12) i) % 10) % 10)::text $$;
-- +goose StatementEnd

-- new_voucher_code is a random voucher code as models.NewVoucherCode makes one: '28', ten
-- random digits (from gen_random_uuid, a strong source) and the check digit. For issuing
-- vouchers set-based (a flow's voucher step); a clash with an existing code is left to the
-- unique index.
-- +goose StatementBegin
CREATE FUNCTION new_voucher_code() RETURNS text
    LANGUAGE sql VOLATILE PARALLEL SAFE
    AS $$ SELECT ean13('28' || lpad(((('x' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 15))::bit(60)::bigint)
                                    % 10000000000)::text, 10, '0')) $$;
-- +goose StatementEnd

-- unit_points is what amount (minor units of currency) earns per major unit at
-- per_major_unit points: ⌊per_major_unit × amount in major units⌋. visit_points is per_visit
-- when the sale is a visit (at least min_amount). The one home of the earning rule: the till's
-- insert, linking, refunds and the demo call them with the reward_program row's columns. They
-- are pure expressions (IMMUTABLE, no FROM) so that PostgreSQL inlines them: reading the program
-- inside them made each call a separately planned function, 0.3–0.5 ms a till insert
-- (docs/benchmarks.md, "Rewards").
-- +goose StatementBegin
CREATE FUNCTION unit_points(amount bigint, currency text, per_major_unit numeric) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(per_major_unit * amount / (10::numeric ^ currency_minor_digits(currency)))::int $$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION visit_points(amount bigint, min_amount bigint, per_visit int) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN amount >= min_amount THEN per_visit ELSE 0 END $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION visit_points(bigint, bigint, int);
DROP FUNCTION unit_points(bigint, text, numeric);
DROP FUNCTION currency_minor_digits(text);
DROP FUNCTION new_voucher_code();
DROP FUNCTION ean13(text);
DROP TABLE points_ledger;
DROP FUNCTION points_ledger_append_only();
DROP TABLE redemptions;
DROP TABLE vouchers;
DROP TABLE rewards;
DROP TABLE reward_program;
