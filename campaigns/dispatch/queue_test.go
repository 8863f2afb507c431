package dispatch

import (
	"context"
	"testing"
	"time"
)

// TestClaimsWalkAheadAndSweepBehind checks PostgresQueue's two ways of looking: claims start after
// the highest seq claimed, and a recipient left behind that point (here released, as after a
// pause) is found by the sweep once nothing is ahead; every claim carries the member's snapshot.
func TestClaimsWalkAheadAndSweepBehind(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.addMembers(t, 10, "ok", "example.com", "active", "confirmed")
	e.campaign(t, 0)
	if err := e.dispatcher().Tick(ctx); err != nil {
		t.Fatal(err)
	}
	q := &PostgresQueue{DB: e.db}
	first, members, err := q.Claim(ctx, 4, time.Minute)
	if err != nil || len(first) != 4 {
		t.Fatalf("first claim: %d recipients, %v; want 4", len(first), err)
	}
	for _, r := range first {
		if m := members[r.MemberID]; !m.Mailable || m.Data.Name == "" || m.Data.Card == "" || m.Data.Name != "Kari "+r.Email[:len(r.Email)-len("@example.com")] {
			t.Errorf("member %d (%s) claimed with %+v, want its snapshot and mailable", r.MemberID, r.Email, m)
		}
	}
	if err := q.Release(ctx, first[:1]); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	for _, r := range first[1:] {
		seen[r.MemberID]++
	}
	for range 5 {
		recs, _, err := q.Claim(ctx, 4, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			seen[r.MemberID]++
		}
	}
	if len(seen) != 10 {
		t.Errorf("%d of 10 recipients claimed: %v", len(seen), seen)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("member %d claimed %d times while held", id, n)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE lease_until IS NOT NULL AND status = 'queued'`); n != 10 {
		t.Errorf("%d recipients leased, want all 10", n)
	}
}
