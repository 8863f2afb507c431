package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/regulars/regulars/models"
)

// LinkUnmatched links purchases made on a card, email or phone to members created in the last
// hour (member creation links its own sales; this catches a sale committed at the same moment).
type LinkUnmatched struct {
	DB  *models.DB
	Log *slog.Logger
}

// Name implements Job.
func (LinkUnmatched) Name() string { return "link-unmatched" }

// Run implements Job.
func (j LinkUnmatched) Run(ctx context.Context) error {
	n, err := j.DB.LinkRecentMembers(ctx, j.DB.Now().Add(-time.Hour))
	if n > 0 {
		j.Log.Info("linked purchases to members", "transactions", n)
	}
	return err
}
