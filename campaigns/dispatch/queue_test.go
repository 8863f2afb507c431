package dispatch

import (
	"context"
	"errors"
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

// TestRetriesBehindOpenFromAreFound checks the open rows' bookkeeping without a status index
// (migration 00029): the dispatcher's tick moves a run's open_from past a recipient waiting for
// a retry, yet the run is not finished while that recipient is open, a sweep claims it once it
// is due (from campaign_recipients_retry), and the run finishes after its outcome. Deleting the
// run deletes its recipients, as ON DELETE CASCADE did.
func TestRetriesBehindOpenFromAreFound(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.addMembers(t, 10, "ok", "example.com", "active", "confirmed")
	id := e.campaign(t, 0)
	if err := e.dispatcher().Tick(ctx); err != nil {
		t.Fatal(err)
	}
	q := &PostgresQueue{DB: e.db}
	recs, _, err := q.Claim(ctx, 10, time.Minute)
	if err != nil || len(recs) != 10 {
		t.Fatalf("claim: %d recipients, %v; want 10", len(recs), err)
	}
	first := e.count(t, `SELECT min(seq) FROM campaign_recipients`)
	var retried Claimed
	var sent []SentMail
	for _, r := range recs {
		if e.count(t, `SELECT seq FROM campaign_recipients WHERE run_id = $1 AND member_id = $2`, r.RunID, r.MemberID) == first {
			retried = r
			continue
		}
		sent = append(sent, SentMail{Claimed: r, At: time.Now()})
	}
	if err := q.Record(ctx, retried, "queued", errors.New("451 try later"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := q.MarkSent(ctx, sent); err != nil {
		t.Fatal(err)
	}
	if err := e.dispatcher().Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := e.count(t, `SELECT open_from FROM campaign_runs`), e.count(t, `SELECT max(seq) FROM campaign_recipients`); got != want {
		t.Errorf("open_from %d after every row but a retry finished, want the last row's %d", got, want)
	}
	if got := e.runStatus(t, id); got != "sending" {
		t.Fatalf("run %s while a recipient waits for its retry", got)
	}
	if recs, _, err := q.Claim(ctx, 10, time.Minute); err != nil || len(recs) != 0 {
		t.Fatalf("claimed %d recipients (%v) before the retry was due", len(recs), err)
	}
	if _, err := e.db.Pool.Exec(ctx, `UPDATE campaign_recipients SET next_attempt_at = now() - interval '1 second' WHERE next_attempt_at IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	again, _, err := q.Claim(ctx, 10, time.Minute)
	if err != nil || len(again) != 1 || again[0].MemberID != retried.MemberID || again[0].Attempts != 2 {
		t.Fatalf("claim after the retry came due: %+v, %v; want member %d on its second attempt", again, err, retried.MemberID)
	}
	if err := q.MarkSent(ctx, []SentMail{{Claimed: again[0], At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := e.dispatcher().Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.runStatus(t, id); got != "sent" {
		t.Errorf("run %s after its last recipient was sent, want sent", got)
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE status = 'sent' AND next_attempt_at IS NULL`); n != 10 {
		t.Errorf("%d recipients sent, want 10", n)
	}
	if _, err := e.db.Pool.Exec(ctx, `DELETE FROM campaign_runs`); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients`); n != 0 {
		t.Errorf("%d recipients left after their run was deleted", n)
	}
}
