package segments

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/regulars/regulars/models"
)

// categoryLines writes a report's rows as "category buyers/orders/units revenue repeat".
func categoryLines(rows []CategoryRow) string {
	out := make([]string, len(rows))
	for i, r := range rows {
		name, repeat := "(uncategorised)", "-"
		if r.Category != nil {
			name = *r.Category
		}
		if r.RepeatRate != nil {
			repeat = fmt.Sprintf("%.2f", *r.RepeatRate)
		}
		out[i] = fmt.Sprintf("%s %d/%d/%d %d %s", name, r.Buyers, r.Orders, r.Units, r.Revenue, repeat)
	}
	return strings.Join(out, "\n")
}

// TestCategoriesOfASegment adds receipt lines to the fixture's sales (query_test.go) and checks
// the per-category figures against sums made by hand. The lines (qty × price):
//
//	sale  member  when               lines                                   counts?
//	R-0   ada     10 days            LP-1 2×4500, GHOST-9 1×700              yes; GHOST-9 is not in the catalogue
//	R-1   ada     100 days           LP-1 1×4500, BN-1 3×3000                yes
//	R-2   ben     70 days            CK-1 1×4000, EMPTY-1 2×500              yes; EMPTY-1 has no category
//	R-4   cai     400 days + 1 h     TEA-1 1×2500                            no: before the 365 days
//	R-5   eva     1 hour             TEA-1 4×2500                            yes
//	R-6   eva     exactly 365 days   BN-1 1×3000                             yes: the window's first instant
//	R-7   eva     1 day after as-of  LP-1 1×4500                             no: not yet
//	R-8   fil     30 days            LP-1 1×4500                             no: refund R-9 names it
//
// Catalogue: LP-1 "Coffee", CK-1 "coffee" (the same category in another case), BN-1 "BAKERY",
// TEA-1 "tea", EMPTY-1 "".
func TestCategoriesOfASegment(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := f.db.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	exec(`INSERT INTO products (sku, name, category, brand, price_minor) VALUES
		('LP-1', 'Latte', 'Coffee', 'House', 4500), ('CK-1', 'Cold brew', 'coffee', 'House', 4000),
		('BN-1', 'Bun', 'BAKERY', 'Nonna''s', 3000), ('TEA-1', 'Tea', 'tea', 'HOUSE', 2500),
		('EMPTY-1', 'Bag', '', '', 500)`)
	exec(`UPDATE transactions SET refunds_txn_id = 'R-8' WHERE txn_id = 'R-9'`)
	type line struct {
		sku        string
		qty, price int
	}
	for txn, lines := range map[string][]line{
		"R-0": {{"LP-1", 2, 4500}, {"GHOST-9", 1, 700}}, "R-1": {{"LP-1", 1, 4500}, {"BN-1", 3, 3000}},
		"R-2": {{"CK-1", 1, 4000}, {"EMPTY-1", 2, 500}}, "R-4": {{"TEA-1", 1, 2500}}, "R-5": {{"TEA-1", 4, 2500}},
		"R-6": {{"BN-1", 1, 3000}}, "R-7": {{"LP-1", 1, 4500}}, "R-8": {{"LP-1", 1, 4500}},
	} {
		for i, l := range lines {
			exec(`INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor)
				SELECT id, $2, $3, $4, $5 FROM transactions WHERE txn_id = $1`, txn, i+1, l.sku, l.qty, l.price)
		}
	}
	saved, err := Create(ctx, f.db, SavedInput{Name: "tea drinkers", Rules: []byte(`{"field": "bought_category", "op": "eq", "value": "TEA"}`)})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, segment, want string
	}{
		{"every member: coffee in two spellings is one category, uncategorised last", "all",
			// Coffee: ada 9000 + 4500 on two sales (a repeat), ben 4000; 1 repeat of 2 buyers.
			"Coffee 2/3/4 17500 0.50\nBAKERY 2/2/4 12000 0.00\ntea 1/1/4 10000 0.00\n(uncategorised) 2/2/3 1700 0.00"},
		{"an empty key is all", "",
			"Coffee 2/3/4 17500 0.50\nBAKERY 2/2/4 12000 0.00\ntea 1/1/4 10000 0.00\n(uncategorised) 2/2/3 1700 0.00"},
		{"a store family: ada and ben", "store:oslo-1",
			"Coffee 2/3/4 17500 0.50\nBAKERY 1/1/3 9000 0.00\n(uncategorised) 2/2/3 1700 0.00"},
		{"a join cohort: ada", "cohort:2024-Q1",
			"Coffee 1/2/3 13500 1.00\nBAKERY 1/1/3 9000 0.00\n(uncategorised) 1/1/1 700 0.00"},
		{"a saved segment: eva", fmt.Sprint("segment:", saved.ID), "tea 1/1/4 10000 0.00\nBAKERY 1/1/1 3000 0.00"},
		{"a segment of nobody has no rows", "store:oslo-2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Categories(ctx, f.db, tc.segment, f.asOf)
			if err != nil {
				t.Fatal(err)
			}
			if got := categoryLines(rep.Categories); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
			if rep.Truncated || !rep.From.Equal(f.asOf.AddDate(0, 0, -365)) {
				t.Errorf("truncated %v, from %v", rep.Truncated, rep.From)
			}
		})
	}
	for _, key := range []string{"rewards:redeemers", "segment:999999", "segment:x", "rfm:nonsense", "store:", "cohort:2024-Q5", "bogus"} {
		t.Run("the key "+key+" is refused naming the segment", func(t *testing.T) {
			_, err := Categories(ctx, f.db, key, f.asOf)
			var e *models.Error
			if !errors.As(err, &e) || e.Code != models.EINVALID || e.Fields["segment"] == "" {
				t.Errorf("got %v, want EINVALID on segment", err)
			}
		})
	}
}
