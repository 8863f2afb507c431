package models

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// EraseMember removes member id's personal data (name, email, phone, birthday, consent evidence,
// queued mail, the card/email/phone presented on their transactions, and the address and name
// copied into their campaign mails' rows) and marks it erased. The transactions stay, linked to
// the anonymous member, so the shop's figures do not change. ENOTFOUND for a missing member; erasing twice is harmless.
//
// The consent rows stay without their evidence (IP, user agent): what was consented to, when and
// how it ended no longer names anyone, and it is the shop's record that it mailed lawfully. A
// live consent is withdrawn and the withdrawal recorded. The card number stays (it is unique and
// required) but nothing finds an erased member by it, and new sales are not linked to one.
func (db *DB) EraseMember(ctx context.Context, id int64) error {
	return pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error { return eraseMember(ctx, tx, id) })
}

func eraseMember(ctx context.Context, tx pgx.Tx, id int64) error {
	lm, err := lockMember(ctx, tx, id)
	if err != nil {
		return err
	}
	if lm.status == StatusErased {
		return nil
	}
	if lm.consent == ConsentPending || lm.consent == ConsentConfirmed {
		if err := recordConsent(ctx, tx, id, false, "", ConsentEvidence{Source: "erase"}); err != nil {
			return err
		}
	}
	for _, q := range []string{
		`UPDATE consents SET ip = NULL, user_agent = '' WHERE member_id = $1`,
		`DELETE FROM club_mail WHERE member_id = $1`,
		`UPDATE transactions SET member_card = NULL, member_email = NULL, member_phone = NULL WHERE member_id = $1`,
		// The campaign mails stay (a run's figures count them) without the address and name their
		// rows copied when made (models.RecipientSnapshot); a mail still queued is not sent, as
		// the sender's claim finds the member no longer mailable.
		`UPDATE campaign_recipients SET email = '', name = NULL WHERE member_id = $1 AND (email <> '' OR name IS NOT NULL)`,
		`UPDATE members SET name = '', email = NULL, phone = NULL, birth_date = NULL, status = 'erased',
		        marketing_consent = 'withdrawn', erased_at = now(), updated_at = now()
		 WHERE id = $1`,
	} {
		if _, err := tx.Exec(ctx, q, id); err != nil {
			return fmt.Errorf("erase member %d: %w", id, err)
		}
	}
	return nil
}

// PurgeUnconfirmed deletes web sign-ups still pending that joined before cutoff (their
// transactions, if any were linked, go back to unmatched) and returns how many.
func (db *DB) PurgeUnconfirmed(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		var ids []int64
		rows, err := tx.Query(ctx, `
			SELECT id FROM members WHERE status = 'pending' AND source = 'web' AND joined_at < $1
			ORDER BY id FOR UPDATE SKIP LOCKED`, cutoff)
		if err != nil {
			return fmt.Errorf("purge unconfirmed: %w", err)
		}
		if ids, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			return fmt.Errorf("purge unconfirmed: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		for _, q := range []string{
			`UPDATE transactions SET member_id = NULL WHERE member_id = ANY($1)`,
			`DELETE FROM consents WHERE member_id = ANY($1)`,
			`DELETE FROM member_metrics WHERE member_id = ANY($1)`,
			`DELETE FROM members WHERE id = ANY($1)`, // club_mail goes with it (ON DELETE CASCADE)
		} {
			tag, err := tx.Exec(ctx, q, ids)
			if err != nil {
				return fmt.Errorf("purge unconfirmed: %w", err)
			}
			n = tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
