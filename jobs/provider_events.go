package jobs

import (
	"context"
	"log/slog"

	"github.com/regulars/regulars/campaigns/tracking"
	"github.com/regulars/regulars/models"
)

// PurgeProviderEvents forgets the ids of provider webhook events applied longer ago than any
// provider retries (tracking.PurgeProviderEvents); every replica may run it, a DELETE twice
// deletes nothing twice.
type PurgeProviderEvents struct {
	DB  *models.DB
	Log *slog.Logger
}

// Name implements Job.
func (PurgeProviderEvents) Name() string { return "purge-provider-events" }

// Run implements Job.
func (j PurgeProviderEvents) Run(ctx context.Context) error {
	n, err := tracking.PurgeProviderEvents(ctx, j.DB)
	if n > 0 {
		j.Log.Info("provider webhook event ids purged", "events", n)
	}
	return err
}
