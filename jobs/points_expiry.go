package jobs

import (
	"context"
	"log/slog"

	"github.com/regulars/regulars/models"
)

// ExpirePoints is the nightly expiry of reward points (models.DB.ExpirePoints): every replica
// schedules it; its advisory lock makes a second run at the same time expire nothing twice.
type ExpirePoints struct {
	DB  *models.DB
	Log *slog.Logger
}

// Name implements Job.
func (ExpirePoints) Name() string { return "expire-points" }

// Run implements Job.
func (j ExpirePoints) Run(ctx context.Context) error {
	n, err := j.DB.ExpirePoints(ctx, j.DB.Now())
	if n > 0 {
		j.Log.Info("reward points expired", "points", n)
	}
	return err
}
