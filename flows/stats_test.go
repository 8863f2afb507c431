package flows

import (
	"context"
	"testing"
	"time"
)

// TestStatsCompareMaturedEntries: revenue counts in each entry's own window after entering, only
// once that window has closed; the report is preliminary until both groups have MinMatured
// matured entries, and says when that will be.
func TestStatsCompareMaturedEntries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in, err := ParseInput([]byte(`{"name": "Win back", "trigger": {"event": "lapsed", "days": 60}, "holdout_percent": 50, ` + oneMail + `}`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Create(ctx, e.db, testFrom, in)
	if err != nil {
		t.Fatal(err)
	}
	// 30 mailed entries 20 days ago, each buying 100.00 three days after entering (and 50.00
	// twenty days before, outside the window); 29 held-out entries 20 days ago buying nothing,
	// and one held-out entry 2 days ago, still in its 7-day window.
	for i := range 60 {
		id, card := e.member(t, "confirmed")
		held := i >= 30
		entered := time.Now().Add(-20 * 24 * time.Hour)
		if i == 59 {
			entered = time.Now().Add(-2 * 24 * time.Hour)
		}
		e.exec(t, `INSERT INTO flow_entries (flow_id, member_id, event_key, held_out, entered_at, status, finished_at)
			VALUES ($1, $2, 'lapsed:1', $3, $4, 'done', now())`, f.ID, id, held, entered)
		if !held {
			e.sale(t, card, entered.Add(3*24*time.Hour))
			e.sale(t, card, entered.Add(-20*24*time.Hour))
		}
	}
	st, err := FindFlowStats(ctx, e.db, f.ID, 7)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entered != 60 || st.HeldOut != 30 || st.Done != 60 {
		t.Errorf("entered %d, held out %d, done %d; want 60, 30, 60", st.Entered, st.HeldOut, st.Done)
	}
	r := st.Revenue
	if r.Members != 30 || r.Revenue != 30*4500 || r.PerMember == nil || *r.PerMember != 4500 {
		t.Errorf("mailed group: %d members, revenue %d, per member %v; want 30, 135000, 4500", r.Members, r.Revenue, r.PerMember)
	}
	if r.Holdout == nil || r.Holdout.Members != 29 || r.Holdout.Lift != 4500 || r.Holdout.LiftLow == nil {
		t.Fatalf("holdout %+v, want 29 matured members and a lift of 4500 with an interval", r.Holdout)
	}
	if !st.Preliminary || st.FinalAt == nil {
		t.Fatalf("preliminary %v, final at %v: want preliminary until the 30th held-out entry matures", st.Preliminary, st.FinalAt)
	}
	if wait := time.Until(*st.FinalAt); wait < 4*24*time.Hour || wait > 5*24*time.Hour+time.Minute {
		t.Errorf("final in %v, want 5 days (the last held-out entry's window)", wait)
	}
	// A week later that entry has matured: final.
	e.exec(t, `UPDATE flow_entries SET entered_at = entered_at - interval '7 days' WHERE flow_id = $1`, f.ID)
	if st, err = FindFlowStats(ctx, e.db, f.ID, 7); err != nil {
		t.Fatal(err)
	}
	if st.Preliminary || st.FinalAt != nil || st.Revenue.Holdout.Members != 30 {
		t.Errorf("preliminary %v, final at %v, %d held out matured: want a final report of 30", st.Preliminary, st.FinalAt, st.Revenue.Holdout.Members)
	}
}
