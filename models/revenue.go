package models

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Revenue per month and store (issue 16.3): how much of a shop's takings comes from club
// members, and whether members spend more per visit than everyone else. Unlike the segment
// metrics, anonymous sales count here: they are the rest of the total. Definitions in
// docs/metrics.md, section "Revenue per month and store".

// MaxRevenueYears bounds one GET /metrics/revenue: every transaction of the range is read, so a
// range is at most this many years (37 monthly rows a store).
const MaxRevenueYears = 3

// RevenueRow is one month of one store. Money is in minor units of the store's currency.
type RevenueRow struct {
	Month           string   `json:"month"` // YYYY-MM, in the store's time zone
	Store           string   `json:"store"`
	Currency        string   `json:"currency"`
	RevenueTotal    int64    `json:"revenue_total"`   // net: sales − refunds, members and anonymous
	RevenueMembers  int64    `json:"revenue_members"` // net, transactions linked to a member
	MemberShare     *float64 `json:"member_share"`    // revenue_members ÷ revenue_total; null when the total is 0
	OrdersMembers   int64    `json:"orders_members"`  // sales linked to a member
	OrdersAnonymous int64    `json:"orders_anonymous"`
	AOVMembers      *float64 `json:"aov_members"`   // revenue_members ÷ orders_members; null without orders
	AOVAnonymous    *float64 `json:"aov_anonymous"` // (revenue_total − revenue_members) ÷ orders_anonymous
}

// RevenueRange is the default range of GET /metrics/revenue on date today: the current month
// and the twelve before it, so that this month can be set against the same month last year.
func RevenueRange(today time.Time) (from, to time.Time) {
	y, m, _ := today.Date()
	to = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	return to.AddDate(-1, -1, 0), to
}

// revenueSQL is the whole report in one statement. $1 and $2 are the dates [from, to), $3 a
// store code, or empty for every store.
//
// Every store gets a row for every month of the range, zeros included, so a chart has no gaps.
// Months and the range's ends are the store's wall clock: a sale at 00:30 on 1 March in Oslo
// is March there, though February in UTC. Each store's bounds are computed once, in st: the
// start of the range, the start of each later month and the end of the range, as instants in
// the store's zone. A transaction's month is then width_bucket over those bounds (a binary
// search of a dozen timestamps): bucket n is the range's nth month, 0 is before the range and
// the last bound's number after it (both left out by the join to the months). Per transaction
// this is a few comparisons where a month in the zone (AT TIME ZONE per row, then date_trunc)
// cost most of the statement, and the range needs no per-store join filter, which the planner
// estimated at a tenth of the rows and answered with a sort of every row (at 1M members:
// docs/benchmarks.md "Catalogue"). The two constant conditions on occurred_at are the range
// widened by two days (no zone is 26 hours away from another), bounds the planner can use on
// any index of occurred_at.
// Revenue is net_amount (models/migrations/00016_net_amount.sql): a refund counts on its own
// date, against the member its sale had (a refund without a member inherits it, see
// insertTransactions). Orders are sales, as in the segment metrics.
const revenueSQL = `
WITH st AS MATERIALIZED (
    SELECT id, code, currency,
           ARRAY[$1::date::timestamp AT TIME ZONE timezone]
           || ARRAY(SELECT g.at AT TIME ZONE timezone
                    FROM generate_series(date_trunc('month', $1::date::timestamp) + interval '1 month',
                                         ($2::date - 1)::timestamp, interval '1 month') AS g(at))
           || ($2::date::timestamp AT TIME ZONE timezone) AS bounds
    FROM stores WHERE $3::text = '' OR code = $3::text
), sums AS (
    SELECT t.store_id,
           width_bucket(t.occurred_at, st.bounds) AS n,
           sum(net_amount(t.kind, t.amount_minor)) AS revenue_total,
           coalesce(sum(net_amount(t.kind, t.amount_minor)) FILTER (WHERE t.member_id IS NOT NULL), 0) AS revenue_members,
           count(*) FILTER (WHERE t.kind = 'sale' AND t.member_id IS NOT NULL) AS orders_members,
           count(*) FILTER (WHERE t.kind = 'sale' AND t.member_id IS NULL) AS orders_anonymous
    FROM transactions t JOIN st ON st.id = t.store_id
    WHERE t.occurred_at >= ($1::date - 2)::timestamptz AND t.occurred_at < ($2::date + 2)::timestamptz
    GROUP BY 1, 2
)
SELECT to_char(mo.at, 'YYYY-MM'), st.code, st.currency,
       coalesce(s.revenue_total, 0)::bigint, coalesce(s.revenue_members, 0)::bigint,
       (s.revenue_members::numeric / NULLIF(s.revenue_total, 0))::float8,
       coalesce(s.orders_members, 0), coalesce(s.orders_anonymous, 0),
       (s.revenue_members::numeric / NULLIF(s.orders_members, 0))::float8,
       ((s.revenue_total - s.revenue_members)::numeric / NULLIF(s.orders_anonymous, 0))::float8
FROM st
CROSS JOIN LATERAL generate_series(date_trunc('month', $1::date::timestamp), ($2::date - 1)::timestamp,
                                   interval '1 month') WITH ORDINALITY AS mo(at, n)
LEFT JOIN sums s ON s.store_id = st.id AND s.n = mo.n
ORDER BY mo.at, st.code`

// Revenue reports [from, to) (dates; to exclusive) per month and store, for one store (its
// code) or every store (""). The range must be non-empty and at most MaxRevenueYears long; an
// unknown store is EINVALID. A month cut by the range counts only its days inside it.
func (db *DB) Revenue(ctx context.Context, from, to time.Time, store string) ([]RevenueRow, error) {
	fe := FieldErrors{}
	switch {
	case !from.Before(to):
		fe.Add("from", "must be before to")
	case to.After(from.AddDate(MaxRevenueYears, 0, 0)):
		fe.Add("to", fmt.Sprintf("must be at most %d years after from", MaxRevenueYears))
	}
	if store != "" {
		var known bool
		if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM stores WHERE code = $1)`, store).Scan(&known); err != nil {
			return nil, fmt.Errorf("revenue: find store: %w", err)
		}
		if !known {
			fe.Add("store", "no store has this code")
		}
	}
	if err := fe.Err("invalid revenue query"); err != nil {
		return nil, err
	}
	rows, err := db.Pool.Query(ctx, revenueSQL, from.Format(time.DateOnly), to.Format(time.DateOnly), store)
	if err != nil {
		return nil, fmt.Errorf("revenue: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RevenueRow, error) {
		var v RevenueRow
		err := r.Scan(&v.Month, &v.Store, &v.Currency, &v.RevenueTotal, &v.RevenueMembers, &v.MemberShare,
			&v.OrdersMembers, &v.OrdersAnonymous, &v.AOVMembers, &v.AOVAnonymous)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("revenue: %w", err)
	}
	return out, nil
}
