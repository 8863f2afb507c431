package models

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Kinds of club mail (templates/mail/<kind>.html|.txt).
const (
	MailConfirm        = "confirm"         // web sign-up: confirm your email to activate the membership
	MailConsentConfirm = "consent_confirm" // till enrolment with consent: confirm you want offers by email
	MailAlreadyMember  = "already_member"  // someone joined with an address that is already a member
	MailWelcome        = "welcome"         // after confirmation: card number, barcode, discount
)

// queueMail queues one club mail inside tx.
func queueMail(ctx context.Context, tx pgx.Tx, kind string, memberID int64, to, lang string) error {
	_, err := tx.Exec(ctx, `INSERT INTO club_mail (kind, member_id, to_addr, language, mailbox) VALUES ($1, $2, $3, $4, $5)`,
		kind, memberID, to, lang, MailboxKey(to))
	if err != nil {
		return fmt.Errorf("queue %s mail for member %d: %w", kind, memberID, err)
	}
	return nil
}

// ClubMail is one queued club mail.
type ClubMail struct {
	ID       int64
	Kind     string // Mail*
	MemberID int64
	To       string
	Language string
	Attempts int // including the one this claim is for
	// LinkID is the member_links row whose link the mail carries (the MailLink* kinds), else 0.
	LinkID int64
}

// ClaimClubMail takes up to limit due mails for sending (FOR UPDATE SKIP LOCKED, so replicas
// share the queue) and leases them for lease: a sender that dies leaves them to be claimed again.
// The oldest due mail goes first.
func (db *DB) ClaimClubMail(ctx context.Context, limit int, lease time.Duration) ([]ClubMail, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := db.Pool.Query(ctx, `
		UPDATE club_mail SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
		WHERE id IN (
			SELECT id FROM club_mail
			WHERE sent_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= now()
			ORDER BY next_attempt_at, id
			LIMIT $1
			FOR UPDATE SKIP LOCKED)
		RETURNING id, kind, member_id, to_addr, language, attempts, coalesce(link_id, 0)`, limit, lease.Seconds())
	if err != nil {
		return nil, fmt.Errorf("claim club mail: %w", err)
	}
	mails, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ClubMail, error) {
		var m ClubMail
		err := r.Scan(&m.ID, &m.Kind, &m.MemberID, &m.To, &m.Language, &m.Attempts, &m.LinkID)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim club mail: %w", err)
	}
	return mails, nil
}

// ClubMailSent marks mail id delivered. A mail deleted meanwhile (its member erased or purged)
// is no error.
func (db *DB) ClubMailSent(ctx context.Context, id int64) error {
	if _, err := db.Pool.Exec(ctx, `UPDATE club_mail SET sent_at = now(), last_error = '' WHERE id = $1`, id); err != nil {
		return fmt.Errorf("mark club mail %d sent: %w", id, err)
	}
	return nil
}

// ClubMailFailed records a failed attempt at mail id: with retryAt it is tried again then, with
// nil it is given up (permanent failure).
func (db *DB) ClubMailFailed(ctx context.Context, id int64, cause error, retryAt *time.Time) error {
	msg := "unknown error"
	if cause != nil {
		msg = cause.Error()
	}
	_, err := db.Pool.Exec(ctx, `
		UPDATE club_mail SET last_error = $2,
		       next_attempt_at = coalesce($3, next_attempt_at),
		       given_up_at = CASE WHEN $3::timestamptz IS NULL THEN now() END
		WHERE id = $1`, id, msg, retryAt)
	if err != nil {
		return fmt.Errorf("record failure of club mail %d: %w", id, err)
	}
	return nil
}
