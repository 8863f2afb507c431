package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// lockedMember is a member row read FOR UPDATE, for the flows that change it.
type lockedMember struct {
	status, consent, source, lang, card string
	email, phone                        *string
	storeID                             *int64
}

// lockMember reads and locks member id, so that concurrent confirmations, preference changes
// and unsubscriptions of one member take turns. ENOTFOUND when there is none.
func lockMember(ctx context.Context, tx pgx.Tx, id int64) (*lockedMember, error) {
	var m lockedMember
	err := tx.QueryRow(ctx, `
		SELECT status, marketing_consent, source, language, card, email, phone, home_store_id
		FROM members WHERE id = $1 FOR UPDATE`, id).Scan(&m.status, &m.consent, &m.source, &m.lang, &m.card, &m.email, &m.phone, &m.storeID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENOTFOUND, "no member %d", id)
	}
	if err != nil {
		return nil, fmt.Errorf("lock member %d: %w", id, err)
	}
	return &m, nil
}

// lockLiveMember is lockMember for the flows that act on a member who is still there: an erased
// member is ENOTFOUND too.
func lockLiveMember(ctx context.Context, tx pgx.Tx, id int64) (*lockedMember, error) {
	lm, err := lockMember(ctx, tx, id)
	if err == nil && lm.status == StatusErased {
		return nil, Errorf(ENOTFOUND, "no member %d", id)
	}
	return lm, err
}

// PreferencesInput is what a member may change about themselves (also the admin PATCH).
// Nil fields are left as they are.
type PreferencesInput struct {
	Name             *string `json:"name,omitempty"`
	HomeStore        *string `json:"home_store,omitempty"`
	Language         *string `json:"language,omitempty"`
	MarketingConsent *bool   `json:"marketing_consent,omitempty"`
	// Birthday is "--MM-DD" or "YYYY-MM-DD" (ParseBirthday); the empty string clears it.
	Birthday *string `json:"birthday,omitempty"`
	// ConsentTextVersion is the wording shown when the box was ticked.
	ConsentTextVersion string `json:"consent_text_version,omitempty"`
}

// UpdatePreferences changes member id (EINVALID with field names; ENOTFOUND for erased or
// missing). Giving marketing consent counts as confirmed and is recorded with ev; taking it back
// is recorded as a withdrawal. The preferences page never gives it through here: its link is low
// privilege, so it mails a consent link instead (RequestMemberLink, GrantConsentByLink). An empty
// home_store or birthday clears it; the name may be at most 200 characters.
func (db *DB) UpdatePreferences(ctx context.Context, id int64, in PreferencesInput, ev ConsentEvidence) (*Member, error) {
	fe := FieldErrors{}
	var name *string
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		if utf8.RuneCountInString(n) > 200 {
			fe.Add("name", "must be at most 200 characters")
		}
		name = &n
	}
	var storeID *int64
	if in.HomeStore != nil && *in.HomeStore != "" {
		s, err := db.FindStoreByCode(ctx, *in.HomeStore)
		if err != nil {
			fe.Add("home_store", "no such store")
		} else {
			storeID = &s.ID
		}
	}
	var lang *string
	if in.Language != nil {
		l := strings.ToLower(strings.TrimSpace(*in.Language))
		if !languageRE.MatchString(l) {
			fe.Add("language", "must be a language code such as en or nb")
		}
		lang = &l
	}
	var birthday Birthday
	if in.Birthday != nil {
		b, err := ParseBirthday(*in.Birthday, db.Now())
		if err != nil {
			fe.Add("birthday", err.Error())
		}
		birthday = b
	}
	if err := fe.Err("invalid preferences"); err != nil {
		return nil, err
	}
	if ev.Source == "" {
		ev.Source = "preferences"
	}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		lm, err := lockLiveMember(ctx, tx, id)
		if err != nil {
			return err
		}
		consent := lm.consent
		if c := in.MarketingConsent; c != nil {
			switch {
			case *c && lm.email == nil:
				return &Error{Code: EINVALID, Message: "invalid preferences",
					Fields: map[string]string{"marketing_consent": "needs an email address to send offers to"}}
			case *c && lm.consent != ConsentConfirmed:
				consent = ConsentConfirmed
			case !*c && (lm.consent == ConsentPending || lm.consent == ConsentConfirmed):
				consent = ConsentWithdrawn
			}
			if consent != lm.consent {
				if err := recordConsent(ctx, tx, id, *c, in.ConsentTextVersion, ev); err != nil {
					return err
				}
			}
		}
		_, err = tx.Exec(ctx, `
			UPDATE members SET name = coalesce($2, name),
			       home_store_id = CASE WHEN $3 THEN $4 ELSE home_store_id END,
			       language = coalesce($5, language), marketing_consent = $6,
			       birth_date = CASE WHEN $7 THEN $8 ELSE birth_date END, updated_at = now()
			WHERE id = $1`, id, name, in.HomeStore != nil, storeID, lang, consent, in.Birthday != nil, birthday)
		if err != nil {
			return fmt.Errorf("update preferences of member %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return db.FindMemberByID(ctx, id)
}

// Unsubscribe withdraws member id's marketing consent at once and records the withdrawal with ev.
// changed is false when there was no consent to withdraw (a repeated click is harmless).
// ENOTFOUND for a missing member; an erased one is already unsubscribed (changed false, no error).
// A consent confirmation still waiting in the queue is dropped with it.
func (db *DB) Unsubscribe(ctx context.Context, id int64, ev ConsentEvidence) (changed bool, err error) {
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		changed, err = UnsubscribeTx(ctx, tx, id, ev)
		return err
	})
	return changed, err
}

// UnsubscribeTx is Unsubscribe inside tx, for a withdrawal that is part of a larger change (a
// provider's spam complaint: tracking.RecordComplaint).
func UnsubscribeTx(ctx context.Context, tx pgx.Tx, id int64, ev ConsentEvidence) (changed bool, err error) {
	if ev.Source == "" {
		ev.Source = "unsubscribe"
	}
	lm, err := lockMember(ctx, tx, id)
	if err != nil {
		return false, err
	}
	if lm.consent != ConsentPending && lm.consent != ConsentConfirmed {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE members SET marketing_consent = 'withdrawn', updated_at = now() WHERE id = $1`, id); err != nil {
		return false, fmt.Errorf("unsubscribe member %d: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM club_mail WHERE member_id = $1 AND kind = $2 AND sent_at IS NULL`, id, MailConsentConfirm); err != nil {
		return false, fmt.Errorf("unsubscribe member %d: %w", id, err)
	}
	return true, recordConsent(ctx, tx, id, false, "", ev)
}
