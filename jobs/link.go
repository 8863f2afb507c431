package jobs

import (
	"context"
	"log/slog"

	"github.com/regulars/regulars/models"
)

// LinkUnmatched links purchases made on a card, email or phone that a member has since
// registered (member creation links its own; this catches races with it).
type LinkUnmatched struct {
	DB  *models.DB
	Log *slog.Logger
}

// Name implements Job.
func (LinkUnmatched) Name() string { return "link-unmatched" }

// Run implements Job.
func (j LinkUnmatched) Run(ctx context.Context) error {
	n, err := j.DB.LinkUnmatched(ctx)
	if n > 0 {
		j.Log.Info("linked purchases to members", "transactions", n)
	}
	return err
}
