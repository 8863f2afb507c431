package segments

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// cachedCounts is a segment's row in List: "members/mailable", or "none" while not counted.
func cachedCounts(t *testing.T, f *fixture, id int64) string {
	t.Helper()
	c, err := FindCounted(context.Background(), f.db, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Members == nil || c.Mailable == nil || c.CountedAt == nil {
		return "none"
	}
	return jsonInts(*c.Members, *c.Mailable)
}

func jsonInts(a, b int64) string {
	out, _ := json.Marshal([]int64{a, b})
	return string(out)
}

func TestSegmentCountsAreCachedPerRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fixedClock(f)
	ctx := context.Background()
	// active members of oslo-1: ada (mailable) and ben.
	seg, err := Create(ctx, f.db, SavedInput{Name: "Oslo", Rules: json.RawMessage(
		`{"all": [{"field": "home_store", "op": "eq", "value": "oslo-1"}, {"field": "status", "op": "eq", "value": "active"}]}`)})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a recount caches the counts; one asked not before an earlier count is skipped", func(t *testing.T) {
		if counted, err := Recount(ctx, f.db, seg.ID, time.Time{}, false); err != nil || !counted {
			t.Fatalf("recount: %v %v", counted, err)
		}
		if got := cachedCounts(t, f, seg.ID); got != "[2,1]" {
			t.Errorf("cached %s, want [2,1]", got)
		}
		if counted, err := Recount(ctx, f.db, seg.ID, f.db.Now(), false); err != nil || counted {
			t.Errorf("a count not before the last one: counted %v, err %v; want it skipped", counted, err)
		}
		if ids, err := Uncounted(ctx, f.db, f.db.Now()); err != nil || len(ids) != 0 {
			t.Errorf("uncounted %v %v, want none", ids, err)
		}
	})
	t.Run("a rename keeps the counts; new rules hide them until counted", func(t *testing.T) {
		name := "Oslo regulars"
		if _, err := Update(ctx, f.db, seg.ID, SavedPatch{Name: &name}); err != nil {
			t.Fatal(err)
		}
		if got := cachedCounts(t, f, seg.ID); got != "[2,1]" {
			t.Errorf("after a rename %s, want [2,1]", got)
		}
		if _, err := Update(ctx, f.db, seg.ID, SavedPatch{Rules: json.RawMessage(`{"field": "home_store", "op": "eq", "value": "bergen-1"}`)}); err != nil {
			t.Fatal(err)
		}
		if got := cachedCounts(t, f, seg.ID); got != "none" {
			t.Errorf("after new rules %s, want none until counted", got)
		}
		if ids, err := Uncounted(ctx, f.db, time.Time{}); err != nil || len(ids) != 1 || ids[0] != seg.ID {
			t.Errorf("uncounted %v %v, want [%d]", ids, err, seg.ID)
		}
		if counted, err := Recount(ctx, f.db, seg.ID, f.db.Now(), false); err != nil || !counted {
			t.Fatalf("recount of new rules: %v %v", counted, err)
		}
		if got := cachedCounts(t, f, seg.ID); got != "[2,0]" { // dag and fil
			t.Errorf("new rules counted %s, want [2,0]", got)
		}
	})
	t.Run("a segment another process is counting is skipped, or waited for", func(t *testing.T) {
		tx, err := f.db.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, countLockClass, int32(seg.ID)); err != nil {
			t.Fatal(err)
		}
		if counted, err := Recount(ctx, f.db, seg.ID, time.Time{}, false); err != nil || counted {
			t.Errorf("while locked: counted %v, err %v; want skipped", counted, err)
		}
		done := make(chan error, 1)
		go func() {
			counted, err := Recount(ctx, f.db, seg.ID, time.Time{}, true)
			if err == nil && !counted {
				err = context.Canceled // stands for "did not count"
			}
			done <- err
		}()
		select {
		case err := <-done:
			t.Fatalf("a waiting recount returned while the lock was held: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("waiting recount: %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("a waiting recount did not count after the lock was released")
		}
	})
	t.Run("replicas asking at once count a segment once", func(t *testing.T) {
		// As jobs.CountSegments on several replicas: the same notBefore, no waiting.
		notBefore := f.db.Now()
		f.db.Now = func() time.Time { return notBefore.Add(time.Minute) } // later than the last count
		defer fixedClock(f)
		const replicas = 6
		results := make(chan bool, replicas)
		errs := make(chan error, replicas)
		for range replicas {
			go func() {
				counted, err := Recount(ctx, f.db, seg.ID, notBefore.Add(time.Second), false)
				results <- counted
				errs <- err
			}()
		}
		n := 0
		for range replicas {
			if <-results {
				n++
			}
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if n != 1 {
			t.Errorf("%d of %d replicas counted the segment, want exactly 1", n, replicas)
		}
	})
	t.Run("deleting a segment deletes its counts", func(t *testing.T) {
		if err := Delete(ctx, f.db, seg.ID); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := f.db.Pool.QueryRow(ctx, `SELECT count(*) FROM segment_counts`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d counts left, err %v", n, err)
		}
		if counted, err := Recount(ctx, f.db, seg.ID, time.Time{}, true); err != nil || counted {
			t.Errorf("recount of a deleted segment: %v %v, want nothing", counted, err)
		}
	})
}
