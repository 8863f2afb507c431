package tracking

import (
	"context"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/models"
)

// maxEventIDLen bounds the ids a report names (event ids, Message-IDs); the column allows 300.
const maxEventIDLen = 250

// ProviderEventsKept is how long the ids of applied reports are kept: longer than any
// provider's retries (SNS: 1 hour, SendGrid: 24 hours, Mailgun: 8 hours, Postmark: hours), so
// a retried delivery is always recognised.
const ProviderEventsKept = 7 * 24 * time.Hour

// Report says where a bounce or complaint report came from.
type Report struct {
	// Source names the sender ("ses", "sendgrid", "mailgun", "postmark"); it is the source of
	// the consent withdrawal a complaint records. Empty: the generic webhook ("generic").
	Source string
	// Keys are the report's one-time ids (the provider's event id; for Mailgun also the
	// signature's token, whose signature does not cover the event). The report is applied the
	// first time; a report sharing any key with one applied before changes nothing.
	Keys []string
}

// orGeneric is r, or the generic webhook's report with its optional event id.
func (r Report) orGeneric(eventID string) Report {
	if r.Source != "" {
		return r
	}
	r.Source = "generic"
	if eventID != "" {
		r.Keys = []string{eventID}
	}
	return r
}

// claim records r's keys in tx; first is false when any was recorded before (the caller then
// rolls back: nothing of the report is stored twice). Concurrent deliveries of one report wait
// for each other on the primary key, so exactly one applies it.
func (r Report) claim(ctx context.Context, tx pgx.Tx) (first bool, err error) {
	keys := slices.Compact(slices.Sorted(slices.Values(r.Keys)))
	if len(keys) == 0 {
		return true, nil
	}
	tag, err := tx.Exec(ctx, `INSERT INTO provider_events (provider, event_id)
		SELECT $1, k FROM unnest($2::text[]) k ON CONFLICT DO NOTHING`, r.Source, keys)
	if err != nil {
		return false, fmt.Errorf("record %s event: %w", r.Source, err)
	}
	return tag.RowsAffected() == int64(len(keys)), nil
}

// PurgeProviderEvents forgets the ids of reports applied longer than ProviderEventsKept ago.
func PurgeProviderEvents(ctx context.Context, db *models.DB) (int64, error) {
	tag, err := db.Pool.Exec(ctx, `DELETE FROM provider_events WHERE received_at < $1`, db.Now().Add(-ProviderEventsKept))
	if err != nil {
		return 0, fmt.Errorf("purge provider events: %w", err)
	}
	return tag.RowsAffected(), nil
}

// ComplaintInput is one spam complaint (a feedback-loop report) about a mail to Email.
type ComplaintInput struct {
	Email     string
	MessageID string
	Reason    string
	Report    Report
}

// ComplaintResult is what a complaint changed.
type ComplaintResult struct {
	Email string `json:"email"`
	// Withdrawn: a member with the address had marketing consent, withdrawn now.
	Withdrawn bool `json:"withdrawn"`
	Duplicate bool `json:"duplicate"`
	// RunID is the run whose mail was marked complained about (0: none).
	RunID int64 `json:"-"`
}

// RecordComplaint applies a spam complaint in one transaction: the address is suppressed, the
// mail complained about is marked (as markMail finds it), and the marketing consent of the
// member with the address is withdrawn, recorded with the report's source as the evidence. A
// report applied before changes nothing.
func RecordComplaint(ctx context.Context, db *models.DB, in ComplaintInput) (*ComplaintResult, error) {
	email, ok := normalEmail(in.Email)
	if !ok {
		return nil, models.Errorf(models.EINVALID, "complaint: %q is not an email address", in.Email)
	}
	if in.Report.Source == "" {
		return nil, fmt.Errorf("complaint about %s: no source", email)
	}
	now := db.Now()
	out := &ComplaintResult{Email: email}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		first, err := in.Report.claim(ctx, tx)
		if err != nil || !first {
			out.Duplicate = !first
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO email_suppressions AS s (email, complaints, last_reason, suppressed_at, updated_at)
			VALUES ($1, 1, $2, $3, $3)
			ON CONFLICT (email) DO UPDATE SET complaints = s.complaints + 1, last_reason = excluded.last_reason,
			    suppressed_at = coalesce(s.suppressed_at, excluded.suppressed_at), updated_at = excluded.updated_at`,
			email, nullIfEmpty(clip("complaint: "+in.Reason)), now); err != nil {
			return fmt.Errorf("suppress %s: %w", email, err)
		}
		if out.RunID, err = markMail(ctx, tx, markComplained, email, in.MessageID, now); err != nil {
			return err
		}
		var memberID int64
		err = tx.QueryRow(ctx, `SELECT id FROM members WHERE lower(email) = $1`, email).Scan(&memberID)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return fmt.Errorf("complaint about %s: %w", email, err)
		}
		out.Withdrawn, err = models.UnsubscribeTx(ctx, tx, memberID, models.ConsentEvidence{Source: in.Report.Source})
		return err
	})
	if err != nil {
		return nil, err
	}
	if out.Duplicate {
		out.RunID, out.Withdrawn = 0, false
	}
	return out, nil
}

// What markMail marks: a recipient row's column and its run's counter.
type mark int

const (
	markBounced mark = iota
	markComplained
)

// markMail marks the campaign mail a report is about and counts it on its run, returning the
// run (0 when no mail was marked now). A Message-ID of a campaign mail names the exact row (it
// must also have gone to email); any other id, or none, falls back to the newest campaign mail
// sent to email within BounceLookback (some providers rewrite the Message-ID) of the member who
// has that address now: a mail to an address its member has changed or erased since is then
// not found (the address is suppressed all the same; only the run's count misses it). A mail is
// marked once: a second report about it counts nothing.
func markMail(ctx context.Context, tx pgx.Tx, m mark, email, messageID string, now time.Time) (int64, error) {
	col, counter := "bounced_at", "bounced"
	if m == markComplained {
		col, counter = "complained_at", "complained"
	}
	target := `SELECT cr.run_id, cr.member_id FROM members m JOIN campaign_recipients cr ON cr.member_id = m.id
		    WHERE lower(m.email) = $1 AND m.email IS NOT NULL
		      AND lower(cr.email) = $1 AND cr.status = 'sent' AND cr.sent_at > $2::timestamptz - $3::interval
		    ORDER BY cr.sent_at DESC LIMIT 1`
	args := []any{email, now, BounceLookback}
	if run, member, ok := campaigns.ParseMessageID(messageID); ok {
		target = `SELECT run_id, member_id FROM campaign_recipients
		    WHERE run_id = $3 AND member_id = $4 AND lower(email) = $1 AND status = 'sent'`
		args = []any{email, now, run, member}
	}
	// The newest-mail probe finds the address's member by members_email_key and its mails by
	// campaign_recipients_member (one row per run that ever mailed the member): the recipients
	// have no index on their address, which cost the sender more per mail than the rest of its
	// row (the snapshot's insert, or the "sent" mark when the index named sent_at and status,
	// which kept the mark from being a HOT update: migration 00029). The exact probe is the
	// primary key; the run's counter is one row update in the same statement.
	var runID int64
	err := tx.QueryRow(ctx, `
		WITH target AS (`+target+`),
		hit AS (
		    UPDATE campaign_recipients r SET `+col+` = $2
		    FROM target t WHERE (r.run_id, r.member_id) = (t.run_id, t.member_id) AND r.`+col+` IS NULL
		    RETURNING r.run_id),
		counted AS (
		    UPDATE campaign_runs c SET `+counter+` = c.`+counter+` + 1 FROM hit WHERE c.id = hit.run_id
		    RETURNING c.id)
		SELECT coalesce((SELECT id FROM counted), 0)`, args...).Scan(&runID)
	if err != nil {
		return 0, fmt.Errorf("mark mail to %s: %w", email, err)
	}
	return runID, nil
}

// normalEmail is s lower-cased and trimmed, and whether it is a bare address.
func normalEmail(s string) (string, bool) {
	email := strings.ToLower(strings.TrimSpace(s))
	a, err := mail.ParseAddress(email)
	return email, err == nil && a.Address == email && a.Name == ""
}

// clip bounds a stored reason; providers send whole SMTP transcripts.
func clip(s string) string {
	if len(s) > maxReasonLen {
		return strings.ToValidUTF8(s[:maxReasonLen], "")
	}
	return s
}
