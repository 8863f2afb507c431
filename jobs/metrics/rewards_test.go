package metrics_test

import (
	"context"
	"testing"

	"github.com/regulars/regulars/jobs/metrics"
)

// TestRewardsSegmentsSplitThePrograms members: of the worked example's members, M1 and M2
// earned points before A; M1 redeemed them before A, M2 redeemed after A, M5 redeemed and
// cancelled before A. Redeemers: M1. Non-redeemers: M2 (earned, no redemption standing at A).
func TestRewardsSegmentsSplitTheProgramsMembers(t *testing.T) {
	s := example(t)
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := s.db.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO rewards (code, name, cost_points, discount_minor) VALUES ('coffee', 'Coffee', 10, 3500)`)
	// Earned before A by the members with the two lowest ids (M1, M2), with their first sale.
	exec(`INSERT INTO points_ledger (member_id, kind, points, transaction_id, created_at)
		SELECT member_id, 'earned', 12, min(id), '2026-03-01T12:00:00Z' FROM transactions
		WHERE member_id IN (SELECT id FROM members ORDER BY id LIMIT 2) AND kind = 'sale' GROUP BY member_id`)
	redeem := func(nth int, at string, cancelled *string) {
		exec(`INSERT INTO redemptions (store_id, txn_id, member_id, reward_code, points_spent, content_hash, created_at, cancelled_at)
			SELECT (SELECT min(id) FROM stores), 'RD-' || $1::int, (SELECT id FROM members ORDER BY id OFFSET $1::int - 1 LIMIT 1),
			       'coffee', 10, '\x00', $2::timestamptz, $3::timestamptz`, nth, at, cancelled)
	}
	before, after := "2026-03-15T12:00:00Z", "2026-04-15T12:00:00Z"
	redeem(1, before, nil)
	redeem(2, after, nil)
	redeem(5, before, &before)
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
	checkCount(t, "redeemers", got["rewards:redeemers"].Members, 1)
	checkCount(t, "non-redeemers", got["rewards:non-redeemers"].Members, 1)
	if r := got["rewards:redeemers"]; r.NetRevenue != 25000 {
		t.Errorf("redeemers' net revenue %d, want M1's 25000", r.NetRevenue)
	}
}
