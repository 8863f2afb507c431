package models

// The discount club's own flows: joining on the web with double opt-in, members changing their
// preferences, unsubscribing, exporting and erasing themselves, the join funnel and the queue of
// club mail. Handlers verify the signed tokens (token.go) and pass the member id here.
//
// Every change that causes club mail queues it (club_mail) in the same transaction, so a
// committed change always gets its mail and a rolled-back one never does.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Kinds of club mail (templates/mail/<kind>.html|.txt).
const (
	MailConfirm        = "confirm"         // web sign-up: confirm your email to activate the membership
	MailConsentConfirm = "consent_confirm" // till enrolment with consent: confirm you want offers by email
	MailAlreadyMember  = "already_member"  // someone joined with an address that is already a member
	MailWelcome        = "welcome"         // after confirmation: card number, barcode, discount
)

// Funnel sources: the web form, or staff enrolling at the till.
const (
	SourceWeb  = "web"
	SourceTill = "till"
)

// JoinInput is what the /join form posts, already trimmed.
type JoinInput struct {
	Name             string
	Email            string
	Phone            string // optional
	HomeStore        string // store code
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

// Join validates a web sign-up (EINVALID with fields name, email, phone, home_store) and, in one
// transaction, creates a pending member (or finds the existing one by email), queues the right
// mail, and counts the submission in the join funnel for the chosen store. Joining twice gives one
// member. ev is the visitor's IP and user agent, recorded with a ticked consent box.
//
// Every accepted submission is counted, also one with a known email: the funnel measures the
// form. A phone number that belongs to another member is dropped rather than refused, so the form
// does not tell who is a member. Earlier purchases are linked only at confirmation: until then
// nobody has shown that the email address is theirs.
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
	if err := fe.Err("invalid sign-up"); err != nil {
		return nil, err
	}
	if ev.Source == "" {
		ev.Source = "join"
	}
	j := join{name: name, email: email, phone: phone, storeID: storeID, lang: languageOr(in.Language),
		consent: in.MarketingConsent, textVersion: in.ConsentTextVersion, ev: ev, day: db.clubDay()}
	// A unique violation means a concurrent join (or enrolment) took the email, phone or card
	// first; trying again finds it and takes the "existing" path, drops the phone or draws a new
	// card.
	var err error
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
			INSERT INTO members (card, email, phone, name, home_store_id, status, marketing_consent, source, language)
			VALUES ($1, $2, $3, $4, $5, 'pending', $6, 'web', $7)
			RETURNING id`, card, j.email, phone, j.name, j.storeID, consent, j.lang).Scan(&res.MemberID)
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

// clubDay is today in the configured time zone, the day the funnel counts in.
func (db *DB) clubDay() string {
	loc := db.Timezone
	if loc == nil {
		loc = time.UTC
	}
	return db.Now().In(loc).Format(time.DateOnly)
}

// queueMail queues one club mail inside tx.
func queueMail(ctx context.Context, tx pgx.Tx, kind string, memberID int64, to, lang string) error {
	_, err := tx.Exec(ctx, `INSERT INTO club_mail (kind, member_id, to_addr, language, mailbox) VALUES ($1, $2, $3, $4, $5)`,
		kind, memberID, to, lang, MailboxKey(to))
	if err != nil {
		return fmt.Errorf("queue %s mail for member %d: %w", kind, memberID, err)
	}
	return nil
}

// funnelColumns are the counters countFunnel may add to (never user input).
var funnelColumns = map[string]bool{"views": true, "submissions": true, "confirmations": true}

// countFunnel adds one to a join_funnel counter. The row for (day, store, source) is created by
// the first count; NULLS NOT DISTINCT makes "no store" one row too.
func countFunnel(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, day string, storeID *int64, source, column string) error {
	if !funnelColumns[column] {
		return fmt.Errorf("count funnel: no counter %q", column)
	}
	_, err := q.Exec(ctx, `
		INSERT INTO join_funnel (day, store_id, source, `+column+`) VALUES ($1::date, $2, $3, 1)
		ON CONFLICT (day, store_id, source) DO UPDATE SET `+column+` = join_funnel.`+column+` + 1`,
		day, storeID, source)
	if err != nil {
		return fmt.Errorf("count join funnel %s: %w", column, err)
	}
	return nil
}

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
		lm, err := lockMember(ctx, tx, id)
		if err != nil {
			return err
		}
		if lm.status == StatusErased {
			return Errorf(ENOTFOUND, "no member %d", id)
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
	m, err = db.GetMember(ctx, id)
	return m, first, err
}

// memberColumns and scanMember read a Member; the query joins stores as s.
const memberColumns = `m.id, m.card, m.email, m.phone, m.name, coalesce(s.code, ''), m.status,
	m.marketing_consent, m.source, m.language, m.joined_at`

func scanMember(row pgx.Row, m *Member) error {
	return row.Scan(&m.ID, &m.Card, &m.Email, &m.Phone, &m.Name, &m.HomeStore, &m.Status,
		&m.MarketingConsent, &m.Source, &m.Language, &m.JoinedAt)
}

// GetMember returns member id with its home store code and language; ENOTFOUND when there is
// none. An erased member is returned with status "erased" and no personal data.
func (db *DB) GetMember(ctx context.Context, id int64) (*Member, error) {
	var m Member
	err := scanMember(db.Pool.QueryRow(ctx, `SELECT `+memberColumns+`
		FROM members m LEFT JOIN stores s ON s.id = m.home_store_id WHERE m.id = $1`, id), &m)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENOTFOUND, "no member %d", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get member %d: %w", id, err)
	}
	return &m, nil
}

// PreferencesInput is what a member may change about themselves (also the admin PATCH).
// Nil fields are left as they are.
type PreferencesInput struct {
	Name             *string `json:"name,omitempty"`
	HomeStore        *string `json:"home_store,omitempty"`
	Language         *string `json:"language,omitempty"`
	MarketingConsent *bool   `json:"marketing_consent,omitempty"`
	// ConsentTextVersion is the wording shown when the box was ticked.
	ConsentTextVersion string `json:"consent_text_version,omitempty"`
}

// UpdatePreferences changes member id (EINVALID with field names; ENOTFOUND for erased or
// missing). Giving marketing consent counts as confirmed and is recorded with ev; taking it back
// is recorded as a withdrawal. The preferences page never gives it through here: its link is low
// privilege, so it mails a consent link instead (RequestMemberLink, GrantConsentByLink). An empty home_store clears it; the name may be at most 200 characters.
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
	if err := fe.Err("invalid preferences"); err != nil {
		return nil, err
	}
	if ev.Source == "" {
		ev.Source = "preferences"
	}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		lm, err := lockMember(ctx, tx, id)
		if err != nil {
			return err
		}
		if lm.status == StatusErased {
			return Errorf(ENOTFOUND, "no member %d", id)
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
			       language = coalesce($5, language), marketing_consent = $6, updated_at = now()
			WHERE id = $1`, id, name, in.HomeStore != nil, storeID, lang, consent)
		if err != nil {
			return fmt.Errorf("update preferences of member %d: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return db.GetMember(ctx, id)
}

// Unsubscribe withdraws member id's marketing consent at once and records the withdrawal with ev.
// changed is false when there was no consent to withdraw (a repeated click is harmless).
// ENOTFOUND for a missing member; an erased one is already unsubscribed (changed false, no error).
// A consent confirmation still waiting in the queue is dropped with it.
func (db *DB) Unsubscribe(ctx context.Context, id int64, ev ConsentEvidence) (changed bool, err error) {
	if ev.Source == "" {
		ev.Source = "unsubscribe"
	}
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		lm, err := lockMember(ctx, tx, id)
		if err != nil {
			return err
		}
		if lm.consent != ConsentPending && lm.consent != ConsentConfirmed {
			return nil
		}
		changed = true
		if _, err := tx.Exec(ctx, `UPDATE members SET marketing_consent = 'withdrawn', updated_at = now() WHERE id = $1`, id); err != nil {
			return fmt.Errorf("unsubscribe member %d: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM club_mail WHERE member_id = $1 AND kind = $2 AND sent_at IS NULL`, id, MailConsentConfirm); err != nil {
			return fmt.Errorf("unsubscribe member %d: %w", id, err)
		}
		return recordConsent(ctx, tx, id, false, "", ev)
	})
	return changed, err
}

// MemberExport is everything held about one member, for the member's own download and the
// admin export.
type MemberExport struct {
	Member       Member              `json:"member"`
	Tier         *string             `json:"tier"`
	Discount     float64             `json:"discount_percent"`
	Consents     []ConsentRecord     `json:"consents"`
	Transactions []ExportTransaction `json:"transactions"`
	ExportedAt   time.Time           `json:"exported_at"`
}

// ConsentRecord is one consent answer as recorded.
type ConsentRecord struct {
	Purpose     string    `json:"purpose"`
	Granted     bool      `json:"granted"`
	Source      string    `json:"source"`
	TextVersion string    `json:"text_version"`
	IP          string    `json:"ip,omitempty"`
	UserAgent   string    `json:"user_agent,omitempty"`
	RecordedAt  time.Time `json:"recorded_at"`
}

// ExportTransaction is one of the member's purchases or refunds with its lines.
type ExportTransaction struct {
	ID         string       `json:"id"`
	Store      string       `json:"store"`
	Kind       string       `json:"kind"`
	OccurredAt time.Time    `json:"occurred_at"`
	Amount     int64        `json:"amount"`
	Currency   string       `json:"currency"`
	Items      []ExportItem `json:"items"`
}

// ExportItem is one line of a transaction.
type ExportItem struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice int64  `json:"unit_price"`
}

// ExportMember gathers member id's data; ENOTFOUND for missing or erased members.
func (db *DB) ExportMember(ctx context.Context, id int64) (*MemberExport, error) {
	tier, discount, err := db.MemberTier(ctx, id)
	if err != nil {
		return nil, err
	}
	return db.exportMember(ctx, db.Pool, id, tier, discount)
}

// exportQuerier is a pool or a transaction: ExportMemberByLink gathers the data in the
// transaction that uses the link.
type exportQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (db *DB) exportMember(ctx context.Context, q exportQuerier, id int64, tier *string, discount float64) (*MemberExport, error) {
	var m Member
	err := scanMember(q.QueryRow(ctx, `SELECT `+memberColumns+`
		FROM members m LEFT JOIN stores s ON s.id = m.home_store_id WHERE m.id = $1`, id), &m)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, Errorf(ENOTFOUND, "no member %d", id)
	case err != nil:
		return nil, fmt.Errorf("export member %d: %w", id, err)
	case m.Status == StatusErased:
		return nil, Errorf(ENOTFOUND, "no member %d", id)
	}
	out := &MemberExport{Member: m, Tier: tier, Discount: discount, ExportedAt: db.Now().UTC(),
		Consents: []ConsentRecord{}, Transactions: []ExportTransaction{}}
	rows, err := q.Query(ctx, `
		SELECT purpose, granted, source, text_version, coalesce(host(ip), ''), user_agent, recorded_at
		FROM consents WHERE member_id = $1 ORDER BY recorded_at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("export consents of member %d: %w", id, err)
	}
	out.Consents, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConsentRecord, error) {
		var c ConsentRecord
		err := r.Scan(&c.Purpose, &c.Granted, &c.Source, &c.TextVersion, &c.IP, &c.UserAgent, &c.RecordedAt)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("export consents of member %d: %w", id, err)
	}
	rows, err = q.Query(ctx, `
		SELECT t.txn_id, s.code, s.timezone, t.kind, t.occurred_at, t.amount_minor, t.currency,
		       coalesce(array_agg(i.sku ORDER BY i.line) FILTER (WHERE i.line IS NOT NULL), '{}'),
		       coalesce(array_agg(i.qty ORDER BY i.line) FILTER (WHERE i.line IS NOT NULL), '{}'),
		       coalesce(array_agg(i.unit_price_minor ORDER BY i.line) FILTER (WHERE i.line IS NOT NULL), '{}')
		FROM transactions t JOIN stores s ON s.id = t.store_id
		LEFT JOIN transaction_items i ON i.transaction_id = t.id
		WHERE t.member_id = $1
		GROUP BY t.id, s.code, s.timezone ORDER BY t.occurred_at, t.id`, id)
	if err != nil {
		return nil, fmt.Errorf("export transactions of member %d: %w", id, err)
	}
	out.Transactions, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ExportTransaction, error) {
		var t ExportTransaction
		var tz string
		var skus []string
		var qtys, prices []int64
		if err := r.Scan(&t.ID, &t.Store, &tz, &t.Kind, &t.OccurredAt, &t.Amount, &t.Currency, &skus, &qtys, &prices); err != nil {
			return t, err
		}
		if loc, err := time.LoadLocation(tz); err == nil {
			t.OccurredAt = t.OccurredAt.In(loc) // the shop's wall clock, as on the receipt
		}
		t.Items = make([]ExportItem, len(skus))
		for i := range skus {
			t.Items[i] = ExportItem{SKU: skus[i], Qty: qtys[i], UnitPrice: prices[i]}
		}
		return t, nil
	})
	if err != nil {
		return nil, fmt.Errorf("export transactions of member %d: %w", id, err)
	}
	return out, nil
}

// EraseMember removes member id's personal data (name, email, phone, consent evidence, queued
// mail, and the card/email/phone presented on their transactions) and marks it erased. The
// transactions stay, linked to the anonymous member, so the shop's figures do not change.
// ENOTFOUND for a missing member; erasing twice is harmless.
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
		`UPDATE members SET name = '', email = NULL, phone = NULL, status = 'erased',
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

// CountJoinView counts one view of the join form (store: the ?store= code it was opened with,
// "" for none; unknown codes count as none) by a client (its IP address and user agent). A client
// counts once a day per store, so that its reloads do not lower the conversion rate
// (join_views.go).
func (db *DB) CountJoinView(ctx context.Context, store, ip, userAgent string) error {
	var storeID *int64
	if store != "" {
		if s, err := db.FindStoreByCode(ctx, store); err == nil {
			storeID = &s.ID
		} else if ErrorCode(err) != ENOTFOUND {
			return err
		}
	}
	return db.countJoinViewOnce(ctx, db.clubDay(), storeID, ip, userAgent)
}

// FunnelRow is one day of the join funnel for one store ("" = no store) and source.
type FunnelRow struct {
	Day           string `json:"day"` // YYYY-MM-DD in REGULARS_TIMEZONE
	Store         string `json:"store"`
	Source        string `json:"source"` // web or till
	Views         int64  `json:"views"`
	Submissions   int64  `json:"submissions"`
	Confirmations int64  `json:"confirmations"`
	// ConversionRate is submissions ÷ views (web only; null without views).
	ConversionRate *float64 `json:"conversion_rate"`
	// ConfirmationRate is confirmations ÷ submissions (null without submissions).
	ConfirmationRate *float64 `json:"confirmation_rate"`
}

// MaxFunnelDays is the longest range JoinFunnel answers for.
const MaxFunnelDays = 366

// JoinFunnel returns the funnel per day, store and source for days in [from, to] (inclusive),
// optionally for one store, plus the totals over the range per source.
//
// Only the dates of from and to count. Days without any count are left out of days; totals has
// one row per source (web, then till) whatever the counts, with day "" and store the one asked
// for ("" for all). A confirmation counts on the day it happens, so a day's confirmation rate may
// exceed 1; over a longer range it settles. EINVALID (fields from, to, store) for a reversed or
// too long range or an unknown store.
func (db *DB) JoinFunnel(ctx context.Context, from, to time.Time, store string) (days []FunnelRow, totals []FunnelRow, err error) {
	fe := FieldErrors{}
	fromDay := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	toDay := time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, time.UTC)
	switch {
	case toDay.Before(fromDay):
		fe.Add("to", "must not be before from")
	case toDay.Sub(fromDay) >= MaxFunnelDays*24*time.Hour:
		fe.Add("to", fmt.Sprintf("the range may span at most %d days", MaxFunnelDays))
	}
	var storeID *int64
	if store != "" {
		s, err := db.FindStoreByCode(ctx, store)
		if err != nil {
			fe.Add("store", "no such store")
		} else {
			storeID = &s.ID
		}
	}
	if err := fe.Err("invalid funnel query"); err != nil {
		return nil, nil, err
	}
	rows, err := db.Pool.Query(ctx, `
		SELECT to_char(f.day, 'YYYY-MM-DD'), coalesce(s.code, ''), f.source, f.views, f.submissions, f.confirmations
		FROM join_funnel f LEFT JOIN stores s ON s.id = f.store_id
		WHERE f.day BETWEEN $1::date AND $2::date AND ($3::bigint IS NULL OR f.store_id = $3)
		ORDER BY f.day, coalesce(s.code, ''), f.source DESC`,
		fromDay.Format(time.DateOnly), toDay.Format(time.DateOnly), storeID)
	if err != nil {
		return nil, nil, fmt.Errorf("join funnel: %w", err)
	}
	days, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (FunnelRow, error) {
		var f FunnelRow
		err := r.Scan(&f.Day, &f.Store, &f.Source, &f.Views, &f.Submissions, &f.Confirmations)
		return f, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("join funnel: %w", err)
	}
	totals = []FunnelRow{{Store: store, Source: SourceWeb}, {Store: store, Source: SourceTill}}
	for i := range days {
		d := &days[i]
		d.setRates()
		t := &totals[0]
		if d.Source == SourceTill {
			t = &totals[1]
		}
		t.Views += d.Views
		t.Submissions += d.Submissions
		t.Confirmations += d.Confirmations
	}
	for i := range totals {
		totals[i].setRates()
	}
	if days == nil {
		days = []FunnelRow{}
	}
	return days, totals, nil
}

// setRates fills the rates from the counts, rounded to four decimals.
func (f *FunnelRow) setRates() {
	ratio := func(a, b int64) *float64 {
		if b == 0 {
			return nil
		}
		r := math.Round(float64(a)/float64(b)*10000) / 10000
		return &r
	}
	f.ConversionRate, f.ConfirmationRate = nil, ratio(f.Confirmations, f.Submissions)
	if f.Source == SourceWeb {
		f.ConversionRate = ratio(f.Submissions, f.Views)
	}
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
