package metrics_test

import (
	"context"
	"testing"

	"github.com/regulars/regulars/jobs/metrics"
)

// TestMedianGapBetweenPurchaseDays: member_metrics.median_gap_days is the median of the days
// between a member's purchase days before A (two sales on one day are one day; a day with only a
// refund is no purchase day; the Oslo calendar decides the day), NULL with one purchase day.
func TestMedianGapBetweenPurchaseDays(t *testing.T) {
	s := newShop(t, "oslo-1")
	ctx := context.Background()
	steady := s.member("oslo-1", "2025-01-01T10:00:00+01:00", "active")
	// Purchase days 1 Jan, 11 Jan (twice), 31 Jan, 12 Mar: gaps 10, 20, 40 → median 20. The
	// refund on 20 Jan is no purchase day; the sale on 1 April (A's date) is after A.
	for _, at := range []string{"2026-01-01T12:00:00+01:00", "2026-01-11T09:00:00+01:00", "2026-01-11T18:00:00+01:00",
		"2026-01-31T12:00:00+01:00", "2026-03-12T12:00:00+01:00", "2026-04-01T09:00:00+02:00"} {
		s.txn(steady, "sale", at, 5000)
	}
	s.txn(steady, "refund", "2026-01-20T12:00:00+01:00", 1000)
	// 23:30 UTC on 31 Jan is 1 Feb in Oslo: purchase days 1 Feb and 5 Feb, one gap of 4.
	night := s.member("oslo-1", "2025-01-01T10:00:00+01:00", "active")
	s.txn(night, "sale", "2026-01-31T23:30:00Z", 5000)
	s.txn(night, "sale", "2026-02-05T12:00:00+01:00", 5000)
	once := s.member("oslo-1", "2025-01-01T10:00:00+01:00", "active")
	s.txn(once, "sale", "2026-02-01T12:00:00+01:00", 5000)
	never := s.member("oslo-1", "2025-01-01T10:00:00+01:00", "active")

	if _, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)}); err != nil {
		t.Fatal(err)
	}
	want := map[int64]*float64{steady: f(20), night: f(4), once: nil, never: nil}
	for id, w := range want {
		var got *float64
		if err := s.db.Pool.QueryRow(ctx, `SELECT median_gap_days FROM member_metrics WHERE member_id = $1`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if (got == nil) != (w == nil) || (got != nil && *got != *w) {
			t.Errorf("member %d: median gap %v, want %v", id, deref64(got), deref64(w))
		}
	}
}
