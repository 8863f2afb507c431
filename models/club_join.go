package models

// The discount club's own flows, one file per job: joining on the web with double opt-in (this
// file), members changing their preferences and unsubscribing (club_preferences.go), exporting
// (club_export.go) and erasing themselves (club_erase.go), the join funnel (funnel.go) and the
// queue of club mail (club_mail.go). Handlers verify the signed tokens (token.go) and pass the
// member id here.
//
// Every change that causes club mail queues it (club_mail) in the same transaction, so a
// committed change always gets its mail and a rolled-back one never does.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// JoinInput is what the /join form posts, already trimmed.
type JoinInput struct {
	Name             string
	Email            string
	Phone            string // optional
	HomeStore        string // store code
	Birthday         string // optional: "--MM-DD" or "YYYY-MM-DD" (ParseBirthday)
	MarketingConsent bool
	// Language is the catalogue language the page was shown in; mail to the member uses it.
	Language string
	// ConsentTextVersion names the exact consent wording shown next to the box.
	ConsentTextVersion string
}

// Join outcomes. The visitor sees the same "check your inbox" page for all of them, so the form
// never tells who is a member; the mail that is queued differs.
const (
	JoinCreated            = "created"             // new pending member, confirmation mail queued
	JoinResentConfirmation = "resent_confirmation" // still pending: confirmation mail queued again
	JoinAlreadyMember      = "already_member"      // active member: "you are already a member" queued
)

// JoinResult is what Join did.
type JoinResult struct {
	MemberID int64
	Outcome  string
}

// Join validates a web sign-up (EINVALID with fields name, email, phone, home_store, birthday)
// and, in one transaction, creates a pending member (or finds the existing one by email), queues
// the right mail, and counts the submission in the join funnel for the chosen store. Joining twice
// gives one member. ev is the visitor's IP and user agent, recorded with a ticked consent box.
//
// Every accepted submission is counted, also one with a known email: the funnel measures the
// form. A phone number that belongs to another member is dropped rather than refused, so the form
// does not tell who is a member. A birthday given with the email of an existing member is dropped
// too: the form changes nobody's details. Earlier purchases are linked only at confirmation: until
// then nobody has shown that the email address is theirs.
func (db *DB) Join(ctx context.Context, in JoinInput, ev ConsentEvidence) (*JoinResult, error) {
	fe := FieldErrors{}
	name := strings.TrimSpace(in.Name)
	switch {
	case name == "":
		fe.Add("name", "is required")
	case utf8.RuneCountInString(name) > 200:
		fe.Add("name", "must be at most 200 characters")
	}
	email, ok := NormalizeEmail(in.Email)
	switch {
	case strings.TrimSpace(in.Email) == "":
		fe.Add("email", "is required")
	case !ok:
		fe.Add("email", "must be an email address")
	}
	var phone *string
	if strings.TrimSpace(in.Phone) != "" {
		ph, ok := NormalizePhone(in.Phone)
		if !ok {
			fe.Add("phone", "must be a phone number: 6-15 digits, optionally starting with +")
		}
		phone = &ph
	}
	var storeID *int64
	if in.HomeStore != "" {
		s, err := db.FindStoreByCode(ctx, in.HomeStore)
		if err != nil {
			fe.Add("home_store", "no such store")
		} else {
			storeID = &s.ID
		}
	}
	birthday, err := ParseBirthday(in.Birthday, db.Now())
	if err != nil {
		fe.Add("birthday", err.Error())
	}
	if err := fe.Err("invalid sign-up"); err != nil {
		return nil, err
	}
	if ev.Source == "" {
		ev.Source = "join"
	}
	j := join{name: name, email: email, phone: phone, storeID: storeID, lang: languageOr(in.Language),
		birthday: birthday, consent: in.MarketingConsent, textVersion: in.ConsentTextVersion, ev: ev, day: db.clubDay()}
	// A unique violation means a concurrent join (or enrolment) took the email, phone or card
	// first; trying again finds it and takes the "existing" path, drops the phone or draws a new
	// card.
	for range 5 {
		var res *JoinResult
		if res, err = db.join(ctx, &j); !isMemberUniqueViolation(err) {
			return res, err
		}
	}
	return nil, err
}

// MaxJoinMailsPerHour is how many mails the public may make us send to one mailbox in an hour:
// the join form's (confirmation, "you are already a member") and requested member links
// together, name+tag@domain counting as name@domain (MailboxKey).
const MaxJoinMailsPerHour = 3

// join is one validated sign-up.
type join struct {
	name, email, lang, textVersion string
	phone                          *string
	storeID                        *int64
	birthday                       Birthday
	consent                        bool
	ev                             ConsentEvidence
	day                            string
}

func (db *DB) join(ctx context.Context, j *join) (*JoinResult, error) {
	card, err := NewCardNumber()
	if err != nil {
		return nil, err
	}
	var res JoinResult
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `SELECT id, status FROM members WHERE lower(email) = $1 AND status <> 'erased' FOR UPDATE`,
			j.email).Scan(&res.MemberID, &status)
		switch {
		case err == nil:
			kind := MailAlreadyMember
			res.Outcome = JoinAlreadyMember
			if status == StatusPending {
				kind, res.Outcome = MailConfirm, JoinResentConfirmation
			}
			if err := j.queueCapped(ctx, tx, kind, res.MemberID); err != nil {
				return err
			}
			return countFunnel(ctx, tx, j.day, j.storeID, SourceWeb, "submissions")
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("find member by email: %w", err)
		}
		phone := j.phone
		if phone != nil {
			var taken bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM members WHERE phone = $1)`, *phone).Scan(&taken); err != nil {
				return fmt.Errorf("check phone: %w", err)
			}
			if taken {
				phone = nil
			}
		}
		consent := ConsentNone
		if j.consent {
			consent = ConsentPending
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO members (card, email, phone, name, home_store_id, status, marketing_consent, source, language, birth_date)
			VALUES ($1, $2, $3, $4, $5, 'pending', $6, 'web', $7, $8)
			RETURNING id`, card, j.email, phone, j.name, j.storeID, consent, j.lang, j.birthday).Scan(&res.MemberID)
		if err != nil {
			return err // a unique violation is retried by Join
		}
		res.Outcome = JoinCreated
		if j.consent {
			if err := recordConsent(ctx, tx, res.MemberID, true, j.textVersion, j.ev); err != nil {
				return err
			}
		}
		if err := j.queueCapped(ctx, tx, MailConfirm, res.MemberID); err != nil {
			return err
		}
		return countFunnel(ctx, tx, j.day, j.storeID, SourceWeb, "submissions")
	})
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// queueCapped queues the sign-up's mail unless its mailbox has had its hourly share of public
// mail. The form answers the same whoever submits, so anyone could make it mail an address over
// and over, or name+1@, name+2@ … of one mailbox: a few mails an hour, then it stays quiet. A new
// sign-up beyond the cap is kept without mail; joining again later sends its link.
func (j *join) queueCapped(ctx context.Context, tx pgx.Tx, kind string, memberID int64) error {
	ok, err := mayMailPublicly(ctx, tx, MailboxKey(j.email))
	if err != nil || !ok {
		return err
	}
	return queueMail(ctx, tx, kind, memberID, j.email, j.lang)
}

// isMemberUniqueViolation reports whether err is a clash on the members' card, email or phone.
func isMemberUniqueViolation(err error) bool {
	return IsUniqueViolation(err, "members_card_key", "members_email_key", "members_phone_key")
}

var languageRE = regexp.MustCompile(`^[a-z]{2,8}$`)

// languageOr returns lang lowercased when it looks like a language code, else "en". Which
// languages exist is the templates' business; models only keep the code.
func languageOr(lang string) string {
	l := strings.ToLower(strings.TrimSpace(lang))
	if !languageRE.MatchString(l) {
		return "en"
	}
	return l
}

// ConfirmMember completes the double opt-in of member id: a pending member becomes active, a
// pending marketing consent becomes confirmed and is recorded (time, ev's IP and user agent, the
// consent text version given at sign-up), the welcome mail is queued and the confirmation counted
// in the funnel. first is false when it was already confirmed (a second click changes nothing and
// queues nothing). An erased or purged member is ENOTFOUND.
//
// The welcome mail (card, barcode, discount) goes only to web sign-ups: a member enrolled at the
// till has the card in hand and confirms only the marketing consent. The confirmation counts for
// the funnel source the member came from (web, or till for every other source). Confirming a web
// sign-up also links earlier purchases made with its email or phone.
func (db *DB) ConfirmMember(ctx context.Context, id int64, ev ConsentEvidence) (m *Member, first bool, err error) {
	if ev.Source == "" {
		ev.Source = "confirm"
	}
	day := db.clubDay()
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		lm, err := lockLiveMember(ctx, tx, id)
		if err != nil {
			return err
		}
		activated := lm.status == StatusPending
		consented := lm.consent == ConsentPending
		first = activated || consented
		if !first {
			return nil
		}
		if _, err := tx.Exec(ctx, `
			UPDATE members SET status = 'active', confirmed_at = now(), updated_at = now(),
			       marketing_consent = CASE WHEN marketing_consent = 'pending' THEN 'confirmed' ELSE marketing_consent END
			WHERE id = $1`, id); err != nil {
			return fmt.Errorf("confirm member %d: %w", id, err)
		}
		if consented {
			var version string
			err := tx.QueryRow(ctx, `
				SELECT text_version FROM consents WHERE member_id = $1 AND purpose = $2 AND granted
				ORDER BY recorded_at DESC, id DESC LIMIT 1`, id, PurposeMarketingEmail).Scan(&version)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("consent text version of member %d: %w", id, err)
			}
			if err := recordConsent(ctx, tx, id, true, version, ev); err != nil {
				return err
			}
		}
		source := SourceTill
		if lm.source == SourceWeb {
			source = SourceWeb
		}
		if err := countFunnel(ctx, tx, day, lm.storeID, source, "confirmations"); err != nil {
			return err
		}
		if activated {
			mem := &Member{ID: id, Card: lm.card, Email: lm.email, Phone: lm.phone}
			if _, err := linkMember(ctx, tx, mem); err != nil {
				return err
			}
			if lm.source == SourceWeb && lm.email != nil {
				return queueMail(ctx, tx, MailWelcome, id, *lm.email, lm.lang)
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	m, err = db.FindMemberByID(ctx, id)
	return m, first, err
}
