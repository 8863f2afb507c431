package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestRetailWithLinesLoads writes a small club with a catalogue and receipt lines, loads it the
// way scripts/bench-metrics.sh does (the three imports, then the lines by \copy and one INSERT
// joining the transactions by store and txn_id; here COPY FROM STDIN into the same staging
// table), and checks what was loaded: every transaction has lines that add up to its amount, a
// refund has the lines of the sale it refunds, and every sku is in the catalogue.
func TestRetailWithLinesLoads(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	club := clubFlags{members: 300, stores: 3, anonymous: 0.25, refunds: 0.05}
	cat := catalogueFlags{products: 200, categories: 7, brands: 11, unknownCost: 0.1}
	const rows, seed = 3000, 3
	for i := range club.stores {
		if _, err := db.CreateStore(ctx, models.StoreInput{Code: storeCode(i), Name: storeCode(i), Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
			t.Fatal(err)
		}
	}
	var members, products, txns, lines bytes.Buffer
	if err := generateMembers(&members, club, seed); err != nil {
		t.Fatal(err)
	}
	if err := generateProducts(&products, cat, seed); err != nil {
		t.Fatal(err)
	}
	if err := generateRetail(&txns, rows, club, seed, newBasket(buildCatalogue(cat, seed), seed), &lines); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ImportMembersCSV(ctx, &members); err != nil {
		t.Fatalf("import members: %v", err)
	}
	if res, err := db.ImportProductsCSV(ctx, &products); err != nil || res.Inserted != int64(cat.products) {
		t.Fatalf("import products: %+v, %v; want %d inserted", res, err, cat.products)
	}
	if _, err := db.ImportTransactionsCSV(ctx, &txns); err != nil {
		t.Fatalf("import transactions: %v", err)
	}
	fileLines := int64(bytes.Count(lines.Bytes(), []byte("\n")) - 1)
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE lines_staging (store text, txn_id text, line int, sku text, qty int, unit_price_minor bigint)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Conn().PgConn().CopyFrom(ctx, &lines, `COPY lines_staging FROM STDIN WITH (FORMAT csv, HEADER true)`); err != nil {
		t.Fatalf("copy lines: %v", err)
	}
	tag, err := conn.Exec(ctx, `
		INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor)
		SELECT t.id, l.line, l.sku, l.qty, l.unit_price_minor
		FROM lines_staging l JOIN stores s ON s.code = l.store JOIN transactions t ON t.store_id = s.id AND t.txn_id = l.txn_id`)
	if err != nil {
		t.Fatalf("insert lines: %v", err)
	}
	if tag.RowsAffected() != fileLines || fileLines < 2*rows {
		t.Fatalf("%d lines loaded of %d in the file; want all, about 2.5 per transaction", tag.RowsAffected(), fileLines)
	}

	var txnCount, withoutLines, badSums, badRefunds, unknownSKUs, unknownCost, categories int64
	if err := db.Pool.QueryRow(ctx, `
		WITH sums AS (
		    SELECT t.id, t.amount_minor, sum(i.qty * i.unit_price_minor) AS lines_sum
		    FROM transactions t LEFT JOIN transaction_items i ON i.transaction_id = t.id GROUP BY t.id
		)
		SELECT (SELECT count(*) FROM transactions),
		       count(*) FILTER (WHERE lines_sum IS NULL),
		       count(*) FILTER (WHERE lines_sum <> amount_minor),
		       (SELECT count(*) FROM transactions r JOIN transactions s ON s.store_id = r.store_id AND s.txn_id = r.refunds_txn_id
		        WHERE r.kind = 'refund' AND
		              (SELECT array_agg((sku, qty, unit_price_minor) ORDER BY line) FROM transaction_items WHERE transaction_id = r.id) IS DISTINCT FROM
		              (SELECT array_agg((sku, qty, unit_price_minor) ORDER BY line) FROM transaction_items WHERE transaction_id = s.id)),
		       (SELECT count(*) FROM transaction_items i WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.sku = i.sku)),
		       (SELECT count(*) FROM products WHERE cost_minor IS NULL),
		       (SELECT count(DISTINCT category) FROM products)
		FROM sums`).Scan(&txnCount, &withoutLines, &badSums, &badRefunds, &unknownSKUs, &unknownCost, &categories); err != nil {
		t.Fatal(err)
	}
	if txnCount != rows || withoutLines != 0 || badSums != 0 || badRefunds != 0 || unknownSKUs != 0 {
		t.Errorf("%d transactions (want %d), %d without lines, %d whose lines do not add up, %d refunds without their sale's lines, %d lines of unknown skus; want 0 of each",
			txnCount, rows, withoutLines, badSums, badRefunds, unknownSKUs)
	}
	if unknownCost == 0 || unknownCost > int64(cat.products)/4 || categories != int64(cat.categories) {
		t.Errorf("%d products without a cost (want about 10%%), %d categories (want %d)", unknownCost, categories, cat.categories)
	}
}

// TestRetailWithoutLinesIsUnchanged: the retail file with lines differs only in its amounts, so
// the benchmarks before issue 16 still describe the same sales.
func TestRetailWithoutLinesIsUnchanged(t *testing.T) {
	club := clubFlags{members: 100, stores: 2, anonymous: 0.25, refunds: 0.05}
	var plain, itemised, lines bytes.Buffer
	if err := generateRetail(&plain, 500, club, 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	cat := catalogueFlags{products: 50, categories: 5, brands: 5, unknownCost: 0.1}
	if err := generateRetail(&itemised, 500, club, 1, newBasket(buildCatalogue(cat, 1), 1), &lines); err != nil {
		t.Fatal(err)
	}
	a, b := bytes.Split(plain.Bytes(), []byte("\n")), bytes.Split(itemised.Bytes(), []byte("\n"))
	if len(a) != len(b) {
		t.Fatalf("%d lines without -lines, %d with", len(a), len(b))
	}
	for i := range a {
		fa, fb := bytes.Split(a[i], []byte(",")), bytes.Split(b[i], []byte(","))
		if len(fa) != len(fb) {
			t.Fatalf("line %d: %q vs %q", i+1, a[i], b[i])
		}
		for j := range fa {
			if j != 5 && !bytes.Equal(fa[j], fb[j]) { // column 5 is the amount
				t.Fatalf("line %d differs beyond the amount: %q vs %q", i+1, a[i], b[i])
			}
		}
	}
}
