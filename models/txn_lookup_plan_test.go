package models_test

import (
	"context"
	"strings"
	"testing"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// TestTillIDLookupPlanNeedsNoStatistics: the refund check and the replay check find sales by
// till id with a plan that probes the unique (store_id, txn_id) index with both columns even
// when made on a new, never analysed table, as the till's connections make it in a deployment's
// first minute and then keep (a generic plan). The former "txn_id = ANY($2)" got an index scan
// on store_id alone with txn_id as a filter there: every row of the store, for every sale.
func TestTillIDLookupPlanNeedsNoStatistics(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, q := range []string{
		`SET plan_cache_mode = force_generic_plan`,
		`PREPARE lookup(bigint, text[]) AS SELECT t.txn_id, t.kind FROM ` + models.StoreTxnsByTillID,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rows, err := conn.Query(ctx, `EXPLAIN EXECUTE lookup(1, '{T-1,T-2}')`)
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
	if !strings.Contains(text, "Index Cond: ((store_id = $1) AND (txn_id = wanted.txn_id))") {
		t.Errorf("the lookup does not probe (store_id, txn_id) on a new table; plan:\n%s", text)
	}
}
