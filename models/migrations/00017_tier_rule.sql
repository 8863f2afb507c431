-- +goose Up
-- The club tier rule, defined once (issue 17, point 3): a member's tier is the ladder step their
-- net spend over the trailing year reaches. The till lookup (models.MemberTier), the segment
-- field tier and the metrics family tier: all call these. They are inlined like
-- net_amount (00016 says how and why): keep them LANGUAGE sql, a single SELECT, not STRICT, no SET.

-- in_trailing_year says whether a transaction at occurred_at lies in the trailing year before
-- as_of, [as_of − 365 calendar days, as_of), the days counted in tz (the shop's time zone,
-- REGULARS_TIMEZONE, like every window of the contract). It is the window of the club tier and of
-- the segment figures orders_365d and spend_365d. A transaction stamped after as_of (a till's
-- clock may run ahead) counts once its time has come. Both bounds are comparisons of occurred_at
-- with values computed from the arguments alone, so they become index conditions on
-- transactions_member. models.TierWindowDays is the same 365 for Go code that needs the number.
-- +goose StatementBegin
CREATE FUNCTION in_trailing_year(occurred_at timestamptz, as_of timestamptz, tz text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT occurred_at >= ((as_of AT TIME ZONE tz) - interval '365 days') AT TIME ZONE tz
             AND occurred_at < as_of $$;
-- +goose StatementEnd

-- tier_for_spend is the ladder step a net spend reaches: the tier with the highest
-- min_spend_minor at or below it, that is the one whose range [min_spend_minor, next tier's
-- min_spend_minor) holds it. No row below every threshold or without a ladder. Written as a
-- range rather than ORDER BY … LIMIT 1 so that a caller joining it LATERAL to a million members
-- gets a plain join against the few tiers (the ranges are computed once), not a sort per member.
-- +goose StatementBegin
CREATE FUNCTION tier_for_spend(net_spend numeric)
    RETURNS TABLE (id bigint, name text, discount_percent numeric)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT r.id, r.name, r.discount_percent
    FROM (SELECT t.id, t.name, t.discount_percent, t.min_spend_minor,
                 lead(t.min_spend_minor) OVER (ORDER BY t.min_spend_minor) AS next_min_spend_minor
          FROM tiers t) r
    WHERE r.min_spend_minor <= net_spend
      AND (r.next_min_spend_minor IS NULL OR net_spend < r.next_min_spend_minor)
    $$;
-- +goose StatementEnd

-- member_tier is one member's tier as of as_of: tier_for_spend of their net spend over
-- in_trailing_year (0 without transactions). One index range scan on transactions_member. The till
-- lookup calls it with now(), segments with their as-of time; the metrics job computes the net
-- spend of all members in one pass and applies in_trailing_year and tier_for_spend itself.
-- +goose StatementBegin
CREATE FUNCTION member_tier(member bigint, as_of timestamptz, tz text)
    RETURNS TABLE (id bigint, name text, discount_percent numeric)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT tt.id, tt.name, tt.discount_percent
    FROM (SELECT coalesce(sum(net_amount(t.kind, t.amount_minor)), 0) AS net
          FROM transactions t
          WHERE t.member_id = member AND in_trailing_year(t.occurred_at, as_of, tz)) s
    CROSS JOIN LATERAL tier_for_spend(s.net) tt
    $$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION member_tier(bigint, timestamptz, text);
DROP FUNCTION tier_for_spend(numeric);
DROP FUNCTION in_trailing_year(timestamptz, timestamptz, text);
