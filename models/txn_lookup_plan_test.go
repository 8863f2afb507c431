package models_test

import (
	"context"
	"strings"
	"testing"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// TestTillPlansNeedNoStatistics: the statements a till's sale or refund runs by id (the refund
// check and the replay check by till id, the refund's lock and debit by row id) reach
// transactions through their unique indexes even in a plan made on a new, never analysed table,
// as the till's connections make it in a deployment's first minute and then keep (a generic
// plan). With "= ANY($n)" and plain joins those plans scanned the whole table, or the store's
// every row, for every sale (docs/benchmarks.md, "A table's first minute").
func TestTillPlansNeedNoStatistics(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, prepare, execute, want string
	}{
		{"lookup by till id", `PREPARE lookup(bigint, text[]) AS SELECT t.txn_id, t.kind FROM ` + models.StoreTxnsByTillID,
			`EXPLAIN EXECUTE lookup(1, '{T-1,T-2}')`, "Index Cond: ((store_id = $1) AND (txn_id = wanted.txn_id))"},
		{"lock refunded sales", `PREPARE lock(bigint[]) AS ` + models.LockRefundedSalesSQL,
			`EXPLAIN EXECUTE lock('{1,2}')`, "Index Cond: ((store_id = r.store_id) AND (txn_id = r.refunds_txn_id))"},
		{"debit refunds", `PREPARE debit(bigint[]) AS ` + models.DebitRefundsSQL,
			`EXPLAIN EXECUTE debit('{1,2}')`, "Index Cond: ((store_id = t.store_id) AND (txn_id = t.refunds_txn_id))"},
	} {
		if _, err := conn.Exec(ctx, c.prepare); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		rows, err := conn.Query(ctx, c.execute)
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
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		text := strings.Join(plan, "\n")
		if strings.Contains(text, "Seq Scan on transactions") || !strings.Contains(text, c.want) {
			t.Errorf("%s: a plan made on a new table scans transactions or does not probe by id:\n%s", c.name, text)
		}
	}
}
