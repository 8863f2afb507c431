package metrics_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/regulars/regulars/jobs/metrics"
)

// TestBackfillAveragesItsOwnMemberFigures: a back-filled run's segments average that run's
// model figures, not the newer rows member_metrics keeps. The segment statement reads the
// member figures from the run's next member_metrics, before the newer rows are put back into
// it (store.go); this pins that order: an older date run alone, and again after a newer run,
// gives the same averages (within the warm-started fits' tolerance), and the newer run's
// differ.
func TestBackfillAveragesItsOwnMemberFigures(t *testing.T) {
	s := simulatedShop(t)
	ctx := context.Background()
	older := asOf.AddDate(0, -3, 0)
	run := func(date time.Time) [3]float64 {
		t.Helper()
		runID, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: date, Timezone: oslo(t)})
		if err != nil {
			t.Fatalf("compute as of %s: %v", date.Format(time.DateOnly), err)
		}
		snap, err := metrics.Latest(ctx, s.db, &date)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Run.ID != runID {
			t.Fatalf("as of %s: latest run %d, want %d", date.Format(time.DateOnly), snap.Run.ID, runID)
		}
		for _, seg := range snap.Segments {
			if seg.Segment == "all" {
				if seg.PAlive == nil || seg.ExpectedPurchases == nil || seg.CLVPredicted == nil {
					t.Fatalf("as of %s: segment all without model figures: %+v", date.Format(time.DateOnly), seg)
				}
				return [3]float64{*seg.PAlive, *seg.ExpectedPurchases, *seg.CLVPredicted}
			}
		}
		t.Fatalf("as of %s: no segment all", date.Format(time.DateOnly))
		return [3]float64{}
	}
	alone := run(older)
	newer := run(asOf)
	backfilled := run(older)
	names := []string{"p_alive", "expected_purchases", "clv_predicted"}
	for i, name := range names {
		if d := math.Abs(backfilled[i]-alone[i]) / math.Abs(alone[i]); d > 1e-4 {
			t.Errorf("%s of the back-filled run = %v, want %v (the same date's run alone; relative difference %.2g)",
				name, backfilled[i], alone[i], d)
		}
		if d := math.Abs(newer[i]-alone[i]) / math.Abs(alone[i]); d < 1e-3 {
			t.Errorf("%s as of %s = %v, as of %s = %v: too close for this test to tell them apart",
				name, asOf.Format(time.DateOnly), newer[i], older.Format(time.DateOnly), alone[i])
		}
	}
}
