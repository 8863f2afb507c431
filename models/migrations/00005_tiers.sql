-- +goose Up
-- Club tiers (issue 3, part 5): the admin's ladder. A member's tier is the one with the highest
-- min_spend_minor at or below their net spend (sales minus refunds, minor units) over the
-- trailing 365 days. It is computed when asked (models.LookupMember), never stored, so it is
-- current the moment a purchase or refund arrives and needs no nightly recomputation.
CREATE TABLE tiers (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 40),
    min_spend_minor  bigint NOT NULL UNIQUE CHECK (min_spend_minor >= 0),
    discount_percent numeric(5, 2) NOT NULL CHECK (discount_percent BETWEEN 0 AND 100),
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE tiers;
