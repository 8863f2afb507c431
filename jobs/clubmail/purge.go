package clubmail

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/regulars/regulars/models"
)

// Purge deletes web sign-ups that were never confirmed within TTL, so an address someone typed
// in without its owner's say-so is not kept, and the member links requested on the preferences
// page a day after they expired (memberLinkKeep). It is a jobs.Job; every replica may run it, as the
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
	links, err := p.DB.PurgeMemberLinks(ctx, now().Add(-memberLinkKeep))
	if err != nil {
		return err
	}
	if links > 0 && p.Log != nil {
		p.Log.Info("purged expired member links", "count", links)
	}
	return nil
}

// memberLinkKeep is how long a requested link is kept after it expired: long enough to tell a
// member who clicks late that it expired rather than that it is not valid.
const memberLinkKeep = 24 * time.Hour
