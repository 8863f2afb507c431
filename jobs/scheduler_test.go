package jobs

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

type funcJob struct {
	name string
	run  func(ctx context.Context) error
}

func (j funcJob) Name() string                  { return j.name }
func (j funcJob) Run(ctx context.Context) error { return j.run(ctx) }

func TestSchedulerSurvivesPanicsAndSkipsOverlaps(t *testing.T) {
	t.Parallel()
	s, err := NewScheduler(slog.New(slog.DiscardHandler), "Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	var panics, slowStarts, failures atomic.Int32
	release := make(chan struct{})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Add("@every 1s", funcJob{"panics", func(context.Context) error { panics.Add(1); panic("boom") }}))
	must(s.Add("@every 1s", funcJob{"fails", func(context.Context) error { failures.Add(1); return errors.New("no") }}))
	must(s.Add("@every 1s", funcJob{"slow", func(ctx context.Context) error {
		slowStarts.Add(1)
		select { // runs until released: later turns must be skipped, not stacked
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}}))
	s.Start()
	deadline := time.Now().Add(10 * time.Second)
	// Both jobs fire each second, in no set order: wait for both counts, not just the first.
	for (panics.Load() < 3 || failures.Load() < 3) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if panics.Load() < 3 || failures.Load() < 3 {
		t.Fatalf("a panicking job ran %d times and a failing one %d times, want each at least 3: a panic stopped the scheduler",
			panics.Load(), failures.Load())
	}
	if n := slowStarts.Load(); n != 1 {
		t.Fatalf("a job still running was started %d times, want 1", n)
	}
	close(release)
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return")
	}
}

func TestSchedulerRefusesBadSpecsAndZones(t *testing.T) {
	t.Parallel()
	if _, err := NewScheduler(slog.New(slog.DiscardHandler), "Mars/Olympus"); err == nil {
		t.Fatal("an unknown time zone was accepted")
	}
	s, err := NewScheduler(slog.New(slog.DiscardHandler), "UTC")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add("every tuesday", funcJob{"x", func(context.Context) error { return nil }}); err == nil {
		t.Fatal("a malformed schedule was accepted")
	}
}
