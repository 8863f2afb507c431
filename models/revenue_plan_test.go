package models_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models/dbtest"
)

// revenueHandSQL is the revenue report written by hand for the measurement: the same sums of
// the same transactions, grouped by store and month in the store's zone, with the exact
// per-store bounds, but none of models.Revenue's wrapping (no empty months, no ratios, no
// constant outer bounds). $1 and $2 are the dates.
const revenueHandSQL = `
SELECT s.code, date_trunc('month', t.occurred_at AT TIME ZONE s.timezone)::date,
       sum(net_amount(t.kind, t.amount_minor)),
       sum(net_amount(t.kind, t.amount_minor)) FILTER (WHERE t.member_id IS NOT NULL),
       count(*) FILTER (WHERE t.kind = 'sale' AND t.member_id IS NOT NULL),
       count(*) FILTER (WHERE t.kind = 'sale' AND t.member_id IS NULL)
FROM transactions t JOIN stores s ON s.id = t.store_id
WHERE t.occurred_at >= ($1::date::timestamp AT TIME ZONE s.timezone)
  AND t.occurred_at < ($2::date::timestamp AT TIME ZONE s.timezone)
GROUP BY 1, 2`

// TestRevenuePlan times GET /metrics/revenue's statement (models.Revenue, every store, one
// year) beside revenueHandSQL, in interleaved rounds in the same run, on a generated shop:
// REGULARS_PLAN_MEMBERS members (default 100,000) with 10 sales each over two years, 3 stores
// in two zones, anonymous sales 30 % of all sales, 2 % of sales refunded. It checks that both
// give the same sums. Only with REGULARS_PLAN=1 (it takes minutes); the figures are in
// docs/benchmarks.md.
//
//	REGULARS_PLAN=1 go test -run TestRevenuePlan -v ./models
func TestRevenuePlan(t *testing.T) {
	if os.Getenv("REGULARS_PLAN") == "" {
		t.Skip("set REGULARS_PLAN=1 to measure the revenue report")
	}
	members := 100_000
	if n, err := strconv.Atoi(os.Getenv("REGULARS_PLAN_MEMBERS")); err == nil && n > 0 {
		members = n
	}
	rounds := 5
	db := dbtest.New(t)
	ctx := context.Background()
	end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	for _, q := range []string{
		`INSERT INTO stores (code, name, timezone, currency) VALUES
		    ('oslo-1', 'Oslo', 'Europe/Oslo', 'NOK'), ('oslo-2', 'Oslo 2', 'Europe/Oslo', 'NOK'),
		    ('london-1', 'London', 'Europe/London', 'GBP')`,
		`INSERT INTO members (card, name, status, source)
		 SELECT lpad(g::text, 13, '0'), 'm' || g, 'active', 'test' FROM generate_series(1, $1::int) g`,
		// 10 sales per member and 3 anonymous ones per 7 of them, over the two years before $2.
		`INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, content_hash)
		 SELECT 1 + g % 3, 'T-' || g, 'sale', $2::timestamptz - random() * interval '730 days',
		        500 + (random() * 20000)::int, 'NOK',
		        CASE WHEN g % 10 < 7 THEN 1 + (g % $1::int) END, '\x00'
		 FROM generate_series(1, (10 * $1::int * 10) / 7) g`,
		`INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, refunds_txn_id, content_hash)
		 SELECT t.store_id, 'R-' || t.txn_id, 'refund', t.occurred_at + interval '1 day', t.amount_minor, t.currency,
		        t.member_id, t.txn_id, '\x00'
		 FROM transactions t WHERE t.kind = 'sale' AND t.id % 50 = 0`,
		`VACUUM ANALYZE`,
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, members)
		}
		if strings.Contains(q, "$2") {
			args = append(args, end)
		}
		if _, err := db.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	var txns int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM transactions`).Scan(&txns); err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d members and %d transactions in %s", members, txns, time.Since(start).Round(time.Second))

	from, to := end.AddDate(-1, 0, 0), end
	var report, hand []time.Duration
	for round := 0; round < rounds; round++ {
		began := time.Now()
		rows, err := db.Revenue(ctx, from, to, "")
		if err != nil {
			t.Fatal(err)
		}
		report = append(report, time.Since(began))

		began = time.Now()
		res, err := db.Pool.Query(ctx, revenueHandSQL, from.Format(time.DateOnly), to.Format(time.DateOnly))
		if err != nil {
			t.Fatal(err)
		}
		var total, members, orders int64
		for res.Next() {
			var store string
			var month time.Time
			var tot, mem, om, oa int64
			if err := res.Scan(&store, &month, &tot, &mem, &om, &oa); err != nil {
				t.Fatal(err)
			}
			total, members, orders = total+tot, members+mem, orders+om+oa
		}
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		hand = append(hand, time.Since(began))

		if round == 0 {
			var wantTotal, wantMembers, wantOrders int64
			for _, r := range rows {
				wantTotal, wantMembers, wantOrders = wantTotal+r.RevenueTotal, wantMembers+r.RevenueMembers, wantOrders+r.OrdersMembers+r.OrdersAnonymous
			}
			if len(rows) != 3*12 || total != wantTotal || members != wantMembers || orders != wantOrders {
				t.Fatalf("%d rows; report %d/%d/%d, hand-written %d/%d/%d", len(rows), wantTotal, wantMembers, wantOrders, total, members, orders)
			}
			t.Logf("one year: %d rows, %d orders", len(rows), orders)
		}
	}
	median := func(d []time.Duration) time.Duration { s := slices.Clone(d); slices.Sort(s); return s[len(s)/2] }
	t.Logf("models.Revenue one year, every store: median %s of %v", median(report).Round(time.Millisecond), report)
	t.Logf("hand-written SQL, same rows:          median %s of %v", median(hand).Round(time.Millisecond), hand)
	t.Logf("ratio %.2f", float64(median(report))/float64(median(hand)))
}
