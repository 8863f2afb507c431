package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models"
)

// SegmentCountsEvery is how often serve recounts the saved segments for the lists, and so how
// old their counts may be.
const SegmentCountsEvery = 10 * time.Minute

// CountSegments recounts the saved segments whose counts are missing, of other rules, or older
// than MaxAge, for the segment lists (segments.List). Every replica schedules it; each segment
// is counted under its own advisory lock and skipped when another replica counted it within
// MaxAge, so each segment is counted once a round across replicas, and replicas that run at
// the same time share the segments between them.
type CountSegments struct {
	DB  *models.DB
	Log *slog.Logger
	// MaxAge is how old counts may get before they are counted again; 0 means
	// SegmentCountsEvery/2, so a round on another replica just before this one is not repeated.
	MaxAge time.Duration
}

// Name implements Job.
func (CountSegments) Name() string { return "segment-counts" }

// Run implements Job. A segment whose count fails (too slow for segments.CountTimeout) is
// logged and the others are counted.
func (j CountSegments) Run(ctx context.Context) error {
	maxAge := j.MaxAge
	if maxAge <= 0 {
		maxAge = SegmentCountsEvery / 2
	}
	notBefore := j.DB.Now().Add(-maxAge)
	ids, err := segments.Uncounted(ctx, j.DB, notBefore)
	if err != nil {
		return err
	}
	var failed []error
	for _, id := range ids {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, segments.CountTimeout)
		counted, err := segments.Recount(cctx, j.DB, id, notBefore, false)
		cancel()
		if err != nil {
			j.Log.Warn("segment count failed", "segment", id, "err", err, "took", time.Since(start))
			failed = append(failed, err)
			continue
		}
		if counted {
			j.Log.Debug("segment counted", "segment", id, "took", time.Since(start))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d segment counts failed: %w", len(failed), len(ids), errors.Join(failed...))
	}
	return nil
}
