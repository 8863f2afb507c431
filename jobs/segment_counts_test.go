package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// countedLog counts the "segment counted" records of CountSegments.
type countedLog struct{ n *atomic.Int32 }

func (h countedLog) Enabled(context.Context, slog.Level) bool { return true }
func (h countedLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "segment counted" {
		h.n.Add(1)
	}
	return nil
}
func (h countedLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countedLog) WithGroup(string) slog.Handler      { return h }

// Replicas that run the counting round at the same time count each segment once between them;
// a round right after counts nothing, and new rules are counted in the next round.
func TestCountSegmentsOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	var ids []int64
	for i := range 5 {
		s, err := segments.Create(ctx, db, segments.SavedInput{Name: fmt.Sprintf("segment %d", i),
			Rules: json.RawMessage(fmt.Sprintf(`{"field": "orders_365d", "op": "gte", "value": %d}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	var counted atomic.Int32
	round := func(replicas int) int {
		t.Helper()
		counted.Store(0)
		var wg sync.WaitGroup
		for range replicas {
			wg.Go(func() {
				job := CountSegments{DB: db, Log: slog.New(countedLog{&counted})}
				if err := job.Run(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		return int(counted.Load())
	}

	if n := round(3); n != 5 {
		t.Errorf("three replicas at once counted %d times, want each of the 5 segments once", n)
	}
	list, err := segments.List(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.CountedAt == nil {
			t.Errorf("segment %d not counted", s.ID)
		}
	}
	if n := round(3); n != 0 {
		t.Errorf("a round right after counted %d segments again, want none", n)
	}
	if _, err := segments.Update(ctx, db, ids[2], segments.SavedPatch{Rules: json.RawMessage(`{"field": "status", "op": "eq", "value": "active"}`)}); err != nil {
		t.Fatal(err)
	}
	if n := round(2); n != 1 {
		t.Errorf("after new rules for one segment, %d counted, want 1", n)
	}
}
