package metrics_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/regulars/regulars/jobs/metrics"
)

// line is one receipt line of an itemised transaction.
type line struct {
	sku   string
	qty   int64
	price int64
}

// itemised records a transaction at oslo-1 with its receipt lines.
func (s *shop) itemised(memberID int64, kind, at string, amount int64, lines ...line) {
	s.t.Helper()
	ctx := context.Background()
	s.n++
	var member *int64
	if memberID != 0 {
		member = &memberID
	}
	var id int64
	if err := s.db.Pool.QueryRow(ctx, `
		INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, content_hash)
		VALUES ($1, $2, $3, $4, $5, 'NOK', $6, '\x00') RETURNING id`,
		s.stores["oslo-1"], fmt.Sprintf("T-%d", s.n), kind, mustTime(s.t, at), amount, member).Scan(&id); err != nil {
		s.t.Fatalf("record transaction: %v", err)
	}
	for i, l := range lines {
		if _, err := s.db.Pool.Exec(ctx, `INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor) VALUES ($1, $2, $3, $4, $5)`,
			id, i+1, l.sku, l.qty, l.price); err != nil {
			s.t.Fatalf("record line: %v", err)
		}
	}
}

func i64(v int64) *int64 { return &v }

// TestUnitsAndMargins checks units per transaction, gross margin and the unknown-cost share
// against figures worked by hand (docs/metrics.md, "Units and margins"). As of 2026-04-01 in
// Oslo, window [2025-04-01, 2026-04-01). Catalogue: A (cost 600), B (no cost known), D (cost
// 500); C is not in the catalogue.
func TestUnitsAndMargins(t *testing.T) {
	s := newShop(t, "oslo-1", "bergen-1", "trondheim-1")
	ctx := context.Background()
	if _, err := s.db.Pool.Exec(ctx, `
		INSERT INTO products (sku, name, price_minor, cost_minor) VALUES
		    ('A', 'A', 1000, 600), ('B', 'B', 500, NULL), ('D', 'D', 2000, 500)`); err != nil {
		t.Fatal(err)
	}
	// X, oslo-1: in the window two itemised sales, a sale without lines and a refund of one A.
	// Units 2+1 + 1+3 − 1 = 6 over 2 itemised sales (the unitemised one is in neither). Lines 5,
	// of which B and C have no known cost: 2. Known-cost revenue 2×1000 + 2000 − 1000 = 3000,
	// margin 2×400 + 1500 − 400 = 1900. A sale before the window counts nowhere.
	x := s.member("oslo-1", "2025-01-15T12:00:00+01:00", "active")
	s.itemised(x, "sale", "2025-03-01T12:00:00+01:00", 5000, line{"A", 5, 1000})
	s.itemised(x, "sale", "2025-06-01T12:00:00+02:00", 2500, line{"A", 2, 1000}, line{"B", 1, 500})
	s.itemised(x, "sale", "2026-01-10T12:00:00+01:00", 2300, line{"D", 1, 2000}, line{"C", 3, 100})
	s.itemised(x, "refund", "2026-01-12T12:00:00+01:00", 1000, line{"A", 1, 1000})
	s.itemised(x, "sale", "2026-02-01T12:00:00+01:00", 700)
	s.member("oslo-1", "2025-01-15T12:00:00+01:00", "active") // Z: no purchases
	// Y, bergen-1: one A sold at a discount: units 1, revenue 900, margin 300.
	y := s.member("bergen-1", "2025-01-15T12:00:00+01:00", "active")
	s.itemised(y, "sale", "2025-09-01T12:00:00+02:00", 900, line{"A", 1, 900})
	// W, trondheim-1: only a line of unknown cost: margins NULL, never a margin at cost 0.
	w := s.member("trondheim-1", "2025-01-15T12:00:00+01:00", "active")
	s.itemised(w, "sale", "2025-09-01T12:00:00+02:00", 200, line{"C", 2, 100})
	// An anonymous sale counts nowhere.
	s.itemised(0, "sale", "2025-09-01T12:00:00+02:00", 1000, line{"A", 1, 1000})

	if _, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)}); err != nil {
		t.Fatal(err)
	}
	snap, err := metrics.Latest(ctx, s.db, &asOf)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]metrics.SegmentMetrics{}
	for _, m := range snap.Segments {
		got[m.Segment] = m
	}
	want := map[string]metrics.SegmentMetrics{
		// X + Y + W: units 6+1+2 = 9 over 2+1+1 itemised sales; lines 5+1+1, unknown 2+0+1;
		// known revenue 3000+900 = 3900, margin 1900+300 = 2200.
		"all": {Units: i64(9), ItemisedOrders: i64(4), UnitsPerTransaction: f(9.0 / 4), Lines: i64(7),
			UnknownCostLines: i64(3), UnknownCostShare: f(3.0 / 7), KnownCostRevenue: i64(3900),
			GrossMargin: i64(2200), MarginRatio: f(2200.0 / 3900)},
		"store:oslo-1": {Units: i64(6), ItemisedOrders: i64(2), UnitsPerTransaction: f(3), Lines: i64(5),
			UnknownCostLines: i64(2), UnknownCostShare: f(2.0 / 5), KnownCostRevenue: i64(3000),
			GrossMargin: i64(1900), MarginRatio: f(1900.0 / 3000)},
		"store:bergen-1": {Units: i64(1), ItemisedOrders: i64(1), UnitsPerTransaction: f(1), Lines: i64(1),
			UnknownCostLines: i64(0), UnknownCostShare: f(0), KnownCostRevenue: i64(900),
			GrossMargin: i64(300), MarginRatio: f(300.0 / 900)},
		"store:trondheim-1": {Units: i64(2), ItemisedOrders: i64(1), UnitsPerTransaction: f(2), Lines: i64(1),
			UnknownCostLines: i64(1), UnknownCostShare: f(1)},
		// Nobody redeemed: no lines, no ratios.
		"rewards:redeemers": {Units: i64(0), ItemisedOrders: i64(0), Lines: i64(0), UnknownCostLines: i64(0)},
	}
	for segment, w := range want {
		t.Run(segment+" has the hand-worked units and margins", func(t *testing.T) {
			g, ok := got[segment]
			if !ok {
				t.Fatalf("segment missing; got %v", keys(got))
			}
			for name, pair := range map[string][2]*int64{
				"units": {g.Units, w.Units}, "itemised_orders": {g.ItemisedOrders, w.ItemisedOrders},
				"lines": {g.Lines, w.Lines}, "unknown_cost_lines": {g.UnknownCostLines, w.UnknownCostLines},
				"known_cost_revenue": {g.KnownCostRevenue, w.KnownCostRevenue}, "gross_margin": {g.GrossMargin, w.GrossMargin},
			} {
				if (pair[0] == nil) != (pair[1] == nil) || pair[0] != nil && *pair[0] != *pair[1] {
					t.Errorf("%s = %s, want %s", name, derefInt(pair[0]), derefInt(pair[1]))
				}
			}
			checkRatio(t, "units_per_transaction", g.UnitsPerTransaction, w.UnitsPerTransaction)
			checkRatio(t, "unknown_cost_share", g.UnknownCostShare, w.UnknownCostShare)
			checkRatio(t, "margin_ratio", g.MarginRatio, w.MarginRatio)
			// clv_margin_historic is clv_historic × margin_ratio, NULL with either.
			var wantCLV *float64
			if g.CLVHistoric != nil && w.MarginRatio != nil {
				wantCLV = f(*g.CLVHistoric * *w.MarginRatio)
			}
			checkRatio(t, "clv_margin_historic", g.CLVMarginHistoric, wantCLV)
		})
	}
}

func derefInt(p *int64) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprint(*p)
}

// TestPredictedMarginCLV checks clv_margin_predicted = clv_predicted × the segment's margin
// ratio on the simulated shop (whose fit converges): every sale in the window gets one line of
// a product sold at 10 with cost 4, so the margin ratio is exactly 0.6.
func TestPredictedMarginCLV(t *testing.T) {
	s := simulatedShop(t)
	ctx := context.Background()
	if _, err := s.db.Pool.Exec(ctx, `
		INSERT INTO products (sku, name, price_minor, cost_minor) VALUES ('P', 'P', 10, 4);
		INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor)
		SELECT id, 1, 'P', 1, 10 FROM transactions`); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)}); err != nil {
		t.Fatal(err)
	}
	snap, err := metrics.Latest(ctx, s.db, &asOf)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range snap.Segments {
		if m.Segment != "all" && m.Segment != "store:oslo-1" {
			continue
		}
		if m.CLVPredicted == nil {
			t.Fatalf("%s: clv_predicted is NULL; the simulated shop's fit should converge", m.Segment)
		}
		checkRatio(t, m.Segment+" margin_ratio", m.MarginRatio, f(0.6))
		checkRatio(t, m.Segment+" clv_margin_predicted", m.CLVMarginPredicted, f(*m.CLVPredicted*0.6))
		checkRatio(t, m.Segment+" clv_margin_historic", m.CLVMarginHistoric, f(*m.CLVHistoric*0.6))
	}
}
