package tracking

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// TestCampaignMargin works the gross margin beside the attributed revenue by hand. Catalogue:
// A costs 600, B has no cost, X is not in the catalogue. Run 1 (mails an hour after t0, window
// 7 days):
//
//	ada sent      sale A×2 @1000 + X×1 @1000, refund A×1 @1000 inside; A×5 after the window;
//	              A×1 in EUR inside (another currency: left out)
//	bo  sent      sale B×1 @500
//	ha  held out  sale A×1 @1000 (held-out members have no margin)
//
// Lines 2 + 1 + 1 = 4, of unknown cost X and B = 2; known-cost revenue 2000 − 1000 = 1000,
// margin 2×400 − 400 = 400. Run 2: bo buys without lines: no line, margin null.
func TestCampaignMargin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	day := 24 * time.Hour
	f.exec(t, `INSERT INTO products (sku, name, price_minor, cost_minor) VALUES ('A', 'A', 1000, 600), ('B', 'B', 500, NULL)`)
	lines := func(store int64, ls ...[3]any) { // the last transaction's lines: sku, qty, unit price
		for i, l := range ls {
			f.exec(t, `INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor)
				SELECT id, $3, $4, $5, $6 FROM transactions WHERE store_id = $1 AND txn_id = $2`,
				store, fmt.Sprintf("T-%d", f.txns), i+1, l[0], l[1], l[2])
		}
	}
	sent := t0.Add(time.Hour)
	r1 := f.run(t, f.campaignID, t0)
	f.recipient(t, r1, "ada", "sent", sent)
	f.recipient(t, r1, "bo", "sent", sent)
	f.recipient(t, r1, "ha", "held_out", sent)
	f.buy(t, "ada", "sale", 3000, f.oslo, sent.Add(day))
	lines(f.oslo, [3]any{"A", 2, 1000}, [3]any{"X", 1, 1000})
	f.buy(t, "ada", "refund", 1000, f.oslo, sent.Add(2*day))
	lines(f.oslo, [3]any{"A", 1, 1000})
	f.buy(t, "ada", "sale", 5000, f.oslo, sent.Add(8*day))
	lines(f.oslo, [3]any{"A", 5, 1000})
	f.buy(t, "ada", "sale", 1000, f.eur, sent.Add(day))
	lines(f.eur, [3]any{"A", 1, 1000})
	f.buy(t, "bo", "sale", 500, f.oslo, sent.Add(day))
	lines(f.oslo, [3]any{"B", 1, 500})
	f.buy(t, "ha", "sale", 1000, f.oslo, t0.Add(day))
	lines(f.oslo, [3]any{"A", 1, 1000})
	r2 := f.run(t, f.campaignID, t0.Add(20*day))
	f.recipient(t, r2, "bo", "sent", t0.Add(20*day+time.Hour))
	f.buy(t, "bo", "sale", 1500, f.oslo, t0.Add(21*day))

	st, err := FindCampaignStats(ctx, f.db, f.campaignID, StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	i64 := func(v int64) *int64 { return &v }
	want := models.Margin{Lines: 4, UnknownCostLines: 2, KnownCostRevenue: i64(1000), GrossMargin: i64(400)}
	for _, tc := range []struct {
		name      string
		got, want models.Margin
	}{
		{"run 1", st.Runs[0].Revenue.Margin, want},
		{"run 2", st.Runs[1].Revenue.Margin, models.Margin{}},
		{"the total", st.Total.Revenue.Margin, want},
	} {
		if marginText(tc.got) != marginText(tc.want) {
			t.Errorf("%s: margin %s, want %s", tc.name, marginText(tc.got), marginText(tc.want))
		}
	}
}

func marginText(m models.Margin) string {
	opt := func(p *int64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("lines %d, unknown %d, known-cost revenue %s, gross margin %s",
		m.Lines, m.UnknownCostLines, opt(m.KnownCostRevenue), opt(m.GrossMargin))
}
