-- +goose Up
-- The SQL business rules that several queries share, each defined once (issue 17, point 3):
-- net spend here, the club tier in 00017. The till lookup, segment fields, the metrics job and
-- campaign stats call these instead of writing the rule out again.
--
-- Every such function is written so that the planner inlines it: LANGUAGE sql, a single SELECT,
-- not STRICT, not SECURITY DEFINER, no SET clause, and no more volatile than its body (scalar
-- ones IMMUTABLE where they can be, table ones STABLE). A query that calls one is planned exactly
-- as if the expression were written in it: EXPLAIN VERBOSE shows the CASE (and, for the tier
-- functions, the index conditions on occurred_at and the scan of tiers), never a function call
-- or a "Function Scan". Keep them that way: a function that is not inlined is a black box to the
-- planner (no index conditions through it, a call per row), which the metrics job at a million
-- members would feel (docs/benchmarks.md).

-- net_amount is what one transaction adds to a member's spend or a segment's revenue, in minor
-- units: a sale its amount, a refund its amount taken away ("revenue is sales minus refunds").
-- kind is 'sale' or 'refund' (transactions_kind_check).
-- +goose StatementBegin
CREATE FUNCTION net_amount(kind text, amount_minor bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE kind WHEN 'sale' THEN amount_minor ELSE -amount_minor END $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION net_amount(text, bigint);
