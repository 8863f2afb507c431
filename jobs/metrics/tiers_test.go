package metrics_test

import (
	"context"
	"testing"

	"github.com/regulars/regulars/jobs/metrics"
	"github.com/regulars/regulars/models"
)

func TestTierSegmentsGoByTrailingNetSpendAsOfA(t *testing.T) {
	s := example(t)
	ctx := context.Background()
	pct := func(v float64) *float64 { return &v }
	// Net spend in [A − 365 days, A) of the worked example: M1 25000, M2 12000, M3 6000 (its
	// sale on A's date is after A), M4 5000, M5 8000, M6 −6000, M7 0 (bought after A), M8 4000,
	// M9 0 (bought a minute before the window).
	_, err := s.db.ReplaceTiers(ctx, []models.TierInput{
		{Name: "Bronze", MinSpend: models.NewInt(0), DiscountPercent: pct(1)},
		{Name: "Silver", MinSpend: models.NewInt(5000), DiscountPercent: pct(5)},
		{Name: "Gold", MinSpend: models.NewInt(20000), DiscountPercent: pct(10)},
		{Name: "Platinum", MinSpend: models.NewInt(1000000), DiscountPercent: pct(15)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)}); err != nil {
		t.Fatal(err)
	}
	snap, err := metrics.Latest(ctx, s.db, &asOf)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]metrics.SegmentMetrics{}
	for _, g := range snap.Segments {
		got[g.Segment] = g
	}
	want := []struct {
		name      string
		segment   string
		members   int64
		customers int64
	}{
		{"members from zero up to the next threshold are bronze, without purchases too", "tier:Bronze", 3, 1}, // M7 M8 M9
		{"a member exactly at a threshold is in that tier", "tier:Silver", 4, 4},                              // M2 M3 M4 M5
		{"a member above the top reached threshold is in the top tier", "tier:Gold", 1, 1},                    // M1
		{"a tier nobody reaches is reported empty", "tier:Platinum", 0, 0},
	}
	for _, w := range want {
		t.Run(w.name, func(t *testing.T) {
			g, ok := got[w.segment]
			if !ok {
				t.Fatalf("segment %s missing; got %v", w.segment, keys(got))
			}
			checkCount(t, "members", g.Members, w.members)
			checkCount(t, "customers", g.Customers, w.customers)
		})
	}
	t.Run("a member with negative net spend is in no tier", func(t *testing.T) {
		var n int64
		for _, w := range want {
			n += got[w.segment].Members
		}
		if n != 8 { // nine members less M6
			t.Errorf("%d members in tiers, want 8", n)
		}
	})
}
