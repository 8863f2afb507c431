package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/regulars/regulars/models"
)

// Job is the scheduled metrics run (it satisfies jobs.Job): each time it computes the snapshot
// as of today in Options.Timezone. Every replica schedules it; the advisory lock lets one of
// them run, and the others' ECONFLICT is expected, so it is logged, not returned.
type Job struct {
	DB      *models.DB
	Log     *slog.Logger
	Options Options // AsOf is ignored: a scheduled run is always as of today
}

// Name implements jobs.Job.
func (Job) Name() string { return "metrics" }

// Run implements jobs.Job.
func (j Job) Run(ctx context.Context) error {
	opts := j.Options
	opts.AsOf = time.Time{}
	start := time.Now()
	runID, err := Compute(ctx, j.DB, opts)
	if models.ErrorCode(err) == models.ECONFLICT {
		j.Log.Info("metrics run skipped: another run is in progress")
		return nil
	}
	if err != nil {
		return err
	}
	j.Log.Info("metrics computed", "run_id", runID, "took", time.Since(start))
	return nil
}
