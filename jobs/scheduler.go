// Package jobs runs the recurring work of a serve process: each job is a small type with
// Run(ctx) error, scheduled by robfig/cron and stopped cleanly with the process.
package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"
)

// Job is one unit of recurring work.
type Job interface {
	Name() string
	Run(ctx context.Context) error
}

// Scheduler runs jobs on cron schedules in one time zone. A panicking job is recovered and
// logged, and a job still running when its next turn comes is skipped, not stacked.
type Scheduler struct {
	cron   *cron.Cron
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
}

// NewScheduler returns a scheduler whose schedules are read in timezone.
func NewScheduler(log *slog.Logger, timezone string) (*Scheduler, error) {
	loc, err := time.LoadLocation(timezone)
	if err != nil {
		return nil, fmt.Errorf("scheduler time zone: %w", err)
	}
	cl := cronLogger{log}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{
		// SkipIfStillRunning must be the outer wrapper: it hands its run token back without a
		// defer, so a panic escaping it would stop that job for good. Recover inside it catches
		// the panic first.
		cron: cron.New(cron.WithLocation(loc), cron.WithChain(cron.SkipIfStillRunning(cl), cron.Recover(cl))),
		log:  log, ctx: ctx, cancel: cancel,
	}, nil
}

// Add schedules job on spec (standard cron, or descriptors like @every 5m).
func (s *Scheduler) Add(spec string, job Job) error {
	_, err := s.cron.AddFunc(spec, func() {
		start := time.Now()
		if err := job.Run(s.ctx); err != nil {
			s.log.Error("job failed", "job", job.Name(), "err", err, "took", time.Since(start))
			return
		}
		s.log.Debug("job done", "job", job.Name(), "took", time.Since(start))
	})
	if err != nil {
		return fmt.Errorf("schedule %s on %q: %w", job.Name(), spec, err)
	}
	return nil
}

// Start starts running jobs in the background.
func (s *Scheduler) Start() { s.cron.Start() }

// Stop cancels running jobs and waits for them to return.
func (s *Scheduler) Stop() {
	s.cancel()
	<-s.cron.Stop().Done()
}

// cronLogger adapts slog to cron's logger.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}
