// Package tracking is what happens after a campaign mail leaves: bounces reported by the mail
// provider (bounces.go), link clicks and opens through signed redirect URLs (clicks.go), and the
// campaign statistics with the revenue a run brought back to the tills (stats.go).
package tracking

import (
	"context"
	"fmt"
	"time"

	"github.com/regulars/regulars/models"
)

// Bounce kinds.
const (
	BounceHard = "hard" // the address does not exist: suppressed at once
	BounceSoft = "soft" // a full mailbox, a greylisting relay: suppressed after SoftBounceLimit
)

// SoftBounceLimit soft bounces within SoftBounceWindow suppress an address.
const (
	SoftBounceLimit  = 3
	SoftBounceWindow = 30 * 24 * time.Hour
)

// Campaign mails sent longer ago than BounceLookback are not marked bounced by a late report:
// a bounce comes within minutes or days, so an old mail to the same address is not the one
// that bounced.
const BounceLookback = 30 * 24 * time.Hour

// maxReasonLen bounds the stored reason; providers send whole SMTP transcripts.
const maxReasonLen = 1000

// BounceInput is one bounce reported by the mail provider.
type BounceInput struct {
	Email  string `json:"email"`
	Type   string `json:"type"`
	Reason string `json:"reason"`
	// MessageID (optional) is the Message-ID of the mail that bounced: a campaign mail's names
	// its run and member (campaigns.ParseMessageID), so the exact recipient row is marked.
	MessageID string `json:"message_id"`
	// EventID (optional) is the sender's id for this report: a report whose id was recorded
	// before changes nothing, so a retried delivery is not counted twice.
	EventID string `json:"event_id"`
	// Report says where the report came from (its source and one-time keys); the generic
	// webhook leaves it empty and is "generic" with EventID as its key.
	Report Report `json:"-"`
}

// BounceResult is the address's state after the bounce.
type BounceResult struct {
	Email      string `json:"email"`
	Suppressed bool   `json:"suppressed"`
	// Duplicate: the report was recorded before (its event id), and nothing changed now.
	Duplicate bool `json:"duplicate"`
	// RunID is the run whose mail was marked bounced (0: none), for the auto-pause check.
	RunID int64 `json:"-"`
}

// RecordBounce counts a bounce of in.Email: a hard bounce suppresses the address at once, the
// SoftBounceLimit-th soft bounce within SoftBounceWindow too. The mail that bounced is marked
// (markMail: by Message-ID, else the newest to the address within BounceLookback). A report
// recorded before (in.EventID, in.Report) changes nothing. Bad input is EINVALID naming the field.
func RecordBounce(ctx context.Context, db *models.DB, in BounceInput) (*BounceResult, error) {
	fe := models.FieldErrors{}
	email, ok := normalEmail(in.Email)
	if !ok {
		fe.Add("email", "must be an email address")
	}
	if in.Type != BounceHard && in.Type != BounceSoft {
		fe.Add("type", `must be "hard" or "soft"`)
	}
	if len(in.EventID) > maxEventIDLen {
		fe.Add("event_id", fmt.Sprintf("must be at most %d characters", maxEventIDLen))
	}
	if len(in.MessageID) > maxEventIDLen {
		fe.Add("message_id", fmt.Sprintf("must be at most %d characters", maxEventIDLen))
	}
	if err := fe.Err("invalid bounce"); err != nil {
		return nil, err
	}
	reason := clip(in.Reason)
	now := db.Now()
	hard := in.Type == BounceHard
	out := &BounceResult{Email: email}

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("record bounce: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()

	if first, err := in.Report.orGeneric(in.EventID).claim(ctx, tx); err != nil {
		return nil, err
	} else if !first {
		out.Duplicate = true
		return out, nil
	}

	// One upsert per bounce: the row lock of ON CONFLICT serialises concurrent reports for one
	// address. recent_soft_bounces keeps the soft bounces of the window, this one included; the
	// address is suppressed when the hard count or that window reaches its limit, and stays so.
	err = tx.QueryRow(ctx, `
		INSERT INTO email_suppressions AS s (email, hard_bounces, soft_bounces, last_reason,
		                                     recent_soft_bounces, suppressed_at, updated_at)
		VALUES ($1, CASE WHEN $2 THEN 1 ELSE 0 END, CASE WHEN $2 THEN 0 ELSE 1 END, $3,
		        CASE WHEN $2 THEN '{}'::timestamptz[] ELSE ARRAY[$4::timestamptz] END,
		        CASE WHEN $2 OR $6 <= 1 THEN $4::timestamptz END, $4)
		ON CONFLICT (email) DO UPDATE SET
		    hard_bounces = s.hard_bounces + excluded.hard_bounces,
		    soft_bounces = s.soft_bounces + excluded.soft_bounces,
		    last_reason = excluded.last_reason,
		    recent_soft_bounces = ARRAY(SELECT b FROM unnest(s.recent_soft_bounces) b
		                                WHERE b > $4::timestamptz - $5::interval ORDER BY b)
		                          || excluded.recent_soft_bounces,
		    suppressed_at = coalesce(s.suppressed_at, CASE WHEN $2 OR cardinality(ARRAY(
		        SELECT b FROM unnest(s.recent_soft_bounces) b WHERE b > $4::timestamptz - $5::interval)) + 1 >= $6
		        THEN $4::timestamptz END),
		    updated_at = $4
		RETURNING suppressed_at IS NOT NULL`,
		email, hard, nullIfEmpty(reason), now, SoftBounceWindow, SoftBounceLimit).Scan(&out.Suppressed)
	if err != nil {
		return nil, fmt.Errorf("record bounce of %s: %w", email, err)
	}
	if out.RunID, err = markMail(ctx, tx, markBounced, email, in.MessageID, now); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("record bounce of %s: %w", email, err)
	}
	return out, nil
}

// IsSuppressed reports whether email may no longer be mailed.
func IsSuppressed(ctx context.Context, db *models.DB, email string) (bool, error) {
	var n int
	err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM email_suppressions
		WHERE email = lower($1) AND suppressed_at IS NOT NULL`, email).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("suppression of %s: %w", email, err)
	}
	return n > 0, nil
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
