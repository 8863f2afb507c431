package segments

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models/dbtest"
)

// TestBoughtCategoryPlan prints the plan and timing of a count with one bought_category rule on a
// generated data set: REGULARS_PLAN_MEMBERS members (default 100,000) with 20 receipt lines
// each, on 5 lines a sale, over two years, 10,000 products in 50 categories, 2% of sales
// refunded by a refund naming them, 5% of lines on skus not in the catalogue. It only runs with
// REGULARS_PLAN=1 (it takes minutes); the plan it printed is in fields.go, at boughtLeaf. It
// then times the category report (Categories) of every member and of such a segment.
//
//	REGULARS_PLAN=1 go test -run TestBoughtCategoryPlan -v ./campaigns/segments
func TestBoughtCategoryPlan(t *testing.T) {
	if os.Getenv("REGULARS_PLAN") == "" {
		t.Skip("set REGULARS_PLAN=1 to measure the bought_category plan")
	}
	members := 100_000
	if n, err := strconv.Atoi(os.Getenv("REGULARS_PLAN_MEMBERS")); err == nil && n > 0 {
		members = n
	}
	db := dbtest.New(t)
	ctx := context.Background()
	asOf := time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	for _, q := range []string{
		`INSERT INTO stores (code, name, timezone, currency) VALUES ('s-1', 'S', 'UTC', 'NOK')`,
		`INSERT INTO members (card, name, status, source, email)
		 SELECT lpad(g::text, 13, '0'), 'm' || g, 'active', 'test', 'm' || g || '@example.org' FROM generate_series(1, $1::int) g`,
		`INSERT INTO products (sku, name, category, brand, price_minor)
		 SELECT 'SKU-' || g, 'Product ' || g, 'Category ' || (g % 50), 'Brand ' || (g % 200), 1000 FROM generate_series(1, 10000) g`,
		// 4 sales per member over two years.
		`INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, content_hash)
		 SELECT 1, 'T-' || g, 'sale', $2::timestamptz - random() * interval '730 days', 5000, 'NOK',
		        1 + (g % $1::int), '\x00'
		 FROM generate_series(1, 4 * $1::int) g`,
		`INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, refunds_txn_id, content_hash)
		 SELECT 1, 'R-' || t.txn_id, 'refund', t.occurred_at + interval '1 day', 5000, 'NOK', t.member_id, t.txn_id, '\x00'
		 FROM transactions t WHERE t.kind = 'sale' AND t.id % 50 = 0`,
		`INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor)
		 SELECT t.id, l, CASE WHEN random() < 0.05 THEN 'LOCAL-' || (random() * 500)::int
		                      ELSE 'SKU-' || (1 + (random() * 9999)::int) END, 1, 1000
		 FROM transactions t, generate_series(1, 5) l WHERE t.kind = 'sale'`,
		`VACUUM ANALYZE`, // the visibility map a steady database has, for index-only scans
	} {
		var args []any
		if strings.Contains(q, "$1") {
			args = append(args, members)
		}
		if strings.Contains(q, "$2") {
			args = append(args, asOf)
		}
		if _, err := db.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%.80s: %v", q, err)
		}
	}
	var lines int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM transaction_items`).Scan(&lines); err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d members and %d lines in %s", members, lines, time.Since(start).Round(time.Second))

	for _, rules := range []string{
		`{"field": "bought_category", "op": "eq", "value": "category 7"}`,
		`{"all": [{"field": "bought_category", "op": "eq", "value": "category 7", "within_days": 30}, {"field": "status", "op": "eq", "value": "active"}]}`,
		`{"field": "bought_sku", "op": "in", "value": ["SKU-17", "LOCAL-3"]}`,
		`{"not": {"field": "bought_brand", "op": "eq", "value": "brand 3"}}`,
	} {
		where, args, err := Compile(mustParse(t, rules), asOf, 0)
		if err != nil {
			t.Fatal(err)
		}
		query := "SELECT count(*) FROM members m WHERE " + where
		for run := 0; run < 2; run++ { // the second run is with a warm cache
			began := time.Now()
			var n int64
			if err := db.Pool.QueryRow(ctx, query, args...).Scan(&n); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d members in %s", rules, n, time.Since(began).Round(time.Millisecond))
		}
		rows, err := db.Pool.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF) "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		t.Logf("plan:\n%s", strings.Join(plan, "\n"))
	}

	// The dashboard's category table (Categories) of every member and of a saved segment with
	// one bought_category rule, beside a ceiling: the same lines summed per category, without
	// buyers, orders or repeat rate (no per-buyer step).
	saved, err := Create(ctx, db, SavedInput{Name: "category 7", Rules: []byte(`{"field": "bought_category", "op": "eq", "value": "category 7"}`)})
	if err != nil {
		t.Fatal(err)
	}
	const ceiling = `
		SELECT lower(p.category), sum(i.qty), sum(i.qty::bigint * i.unit_price_minor)
		FROM transactions t JOIN transaction_items i ON i.transaction_id = t.id LEFT JOIN products p ON p.sku = i.sku
		WHERE t.kind = 'sale' AND t.member_id IS NOT NULL AND t.occurred_at >= $1 AND t.occurred_at < $2
		  AND NOT EXISTS (SELECT 1 FROM transactions r WHERE r.store_id = t.store_id AND r.refunds_txn_id = t.txn_id
		                  AND r.kind = 'refund' AND r.occurred_at < $2)
		GROUP BY 1`
	for run := 0; run < 2; run++ {
		for _, key := range []string{"all", "segment:" + strconv.FormatInt(saved.ID, 10)} {
			began := time.Now()
			rep, err := Categories(ctx, db, key, asOf)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("categories of %s: %d rows in %s", key, len(rep.Categories), time.Since(began).Round(time.Millisecond))
		}
		began := time.Now()
		if _, err := db.Pool.Exec(ctx, ceiling, asOf.AddDate(0, 0, -DefaultWithinDays), asOf); err != nil {
			t.Fatal(err)
		}
		t.Logf("ceiling, every member's lines by category: %s", time.Since(began).Round(time.Millisecond))
	}
}
