package clubmail

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/regulars/regulars/models"
)

// Purge deletes web sign-ups that were never confirmed within TTL, so an address someone typed
// in without its owner's say-so is not kept. It is a jobs.Job; every replica may run it, as the
// delete is idempotent.
type Purge struct {
	DB  *models.DB
	TTL time.Duration // 0: DefaultConfirmTTL
	Log *slog.Logger
	Now func() time.Time // nil: time.Now
}

// Name names the job in logs.
func (p Purge) Name() string { return "club-purge-unconfirmed" }

// Run deletes the sign-ups pending since before now - TTL.
func (p Purge) Run(ctx context.Context) error {
	ttl := p.TTL
	if ttl <= 0 {
		ttl = DefaultConfirmTTL
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	cutoff := now().Add(-ttl)
	n, err := p.DB.PurgeUnconfirmed(ctx, cutoff)
	if err != nil {
		return fmt.Errorf("purge unconfirmed sign-ups: %w", err)
	}
	if n > 0 && p.Log != nil {
		p.Log.Info("purged unconfirmed sign-ups", "count", n, "joined_before", cutoff)
	}
	return nil
}
