package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Member statuses.
const (
	StatusPending = "pending" // signed up on the web, email not confirmed yet
	StatusActive  = "active"
	StatusErased  = "erased" // personal data removed; purchases kept anonymous
)

// Marketing consent states. Only "confirmed" may be mailed.
const (
	ConsentNone      = "none"
	ConsentPending   = "pending" // given, waiting for the double opt-in confirmation
	ConsentConfirmed = "confirmed"
	ConsentWithdrawn = "withdrawn"
)

// PurposeMarketingEmail is the consent purpose for campaign mail.
const PurposeMarketingEmail = "marketing_email"

// Member is a club member.
type Member struct {
	ID               int64   `json:"id"`
	Card             string  `json:"card"`
	Email            *string `json:"email"`
	Phone            *string `json:"phone"`
	Name             string  `json:"name"`
	HomeStore        string  `json:"home_store,omitempty"`
	Status           string  `json:"status"`
	MarketingConsent string  `json:"marketing_consent"`
	Source           string  `json:"source"`
	// Language is the catalogue language mail to the member is written in (templates.Languages).
	Language string `json:"language"`
	// Birthday is left out when the member gave none.
	Birthday Birthday  `json:"birthday,omitzero"`
	JoinedAt time.Time `json:"joined_at"`
	// LinkedTransactions is how many earlier purchases on this card, email or phone were
	// linked to the member when it was created.
	LinkedTransactions int64 `json:"linked_transactions"`
}

// MemberInput enrols a member at the till: the card handed over (or none, and one is issued),
// contact details, and the answer to "may we email you offers?".
type MemberInput struct {
	Card             string `json:"card,omitempty"`
	Email            string `json:"email,omitempty"`
	Phone            string `json:"phone,omitempty"`
	Name             string `json:"name,omitempty"`
	HomeStore        string `json:"home_store,omitempty"`
	MarketingConsent *bool  `json:"marketing_consent"`
	// ConsentTextVersion names the wording the customer agreed to.
	ConsentTextVersion string `json:"consent_text_version,omitempty"`
	// Language is the language mail to the member is written in; "en" when left out.
	Language string `json:"language,omitempty"`
	// Birthday is optional: "--MM-DD" or "YYYY-MM-DD" (ParseBirthday).
	Birthday string `json:"birthday,omitempty"`
}

// ConsentEvidence is where and how a consent answer was given.
type ConsentEvidence struct {
	Source    string // till, join, import, ...
	IP        string
	UserAgent string
}

// CreateMember enrols a member, records the consent answer and links earlier purchases made
// with the same card, email or phone. A register enrols for its own store unless the customer
// names another home store. A customer who consents to marketing mail gets a mail asking them to
// confirm it (double opt-in), and the enrolment counts as a till submission in the join funnel.
func (db *DB) CreateMember(ctx context.Context, p *Principal, in MemberInput, ev ConsentEvidence) (*Member, error) {
	fe := FieldErrors{}
	m := &Member{Card: in.Card, Name: in.Name, HomeStore: in.HomeStore, Status: StatusActive, Source: ev.Source,
		MarketingConsent: ConsentNone, Language: "en"}
	if m.Card != "" && !ValidCard(m.Card) {
		fe.Add("card", "must be 13 digits ending in a correct EAN-13 check digit")
	}
	if in.Email != "" {
		e, ok := NormalizeEmail(in.Email)
		if !ok {
			fe.Add("email", "must be an email address")
		}
		m.Email = &e
	}
	if in.Phone != "" {
		ph, ok := NormalizePhone(in.Phone)
		if !ok {
			fe.Add("phone", "must be a phone number: 6-15 digits, optionally starting with +")
		}
		m.Phone = &ph
	}
	if len(in.Name) > 200 {
		fe.Add("name", "must be at most 200 characters")
	}
	if in.Language != "" {
		if m.Language = languageOr(in.Language); m.Language != strings.ToLower(strings.TrimSpace(in.Language)) {
			fe.Add("language", "must be a language code such as en or nb")
		}
	}
	bd, err := ParseBirthday(in.Birthday, db.Now())
	if err != nil {
		fe.Add("birthday", err.Error())
	}
	m.Birthday = bd
	if in.MarketingConsent == nil {
		fe.Add("marketing_consent", "is required: true or false, as the customer answered")
	} else if *in.MarketingConsent {
		if m.Email == nil {
			fe.Add("email", "is required when the customer consents to marketing mail")
		}
		// Mail may go out only after the customer confirms by email (double opt-in).
		m.MarketingConsent = ConsentPending
	}
	if m.HomeStore == "" && p.Store != nil {
		m.HomeStore = p.Store.Code
	}
	var homeStoreID *int64
	if m.HomeStore != "" {
		s, err := db.FindStoreByCode(ctx, m.HomeStore)
		if err != nil {
			fe.Add("home_store", "no such store")
		} else {
			homeStoreID = &s.ID
		}
	}
	if err := fe.Err("invalid member"); err != nil {
		return nil, err
	}
	if m.Card == "" {
		card, err := NewCardNumber()
		if err != nil {
			return nil, err
		}
		m.Card = card
	}
	day := db.clubDay()
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO members (card, email, phone, name, home_store_id, status, marketing_consent, source, language, birth_date)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			RETURNING id, joined_at`,
			m.Card, m.Email, m.Phone, m.Name, homeStoreID, m.Status, m.MarketingConsent, m.Source, m.Language, m.Birthday).Scan(&m.ID, &m.JoinedAt)
		if err != nil {
			return memberConflict(err)
		}
		if in.MarketingConsent != nil {
			if err := recordConsent(ctx, tx, m.ID, *in.MarketingConsent, in.ConsentTextVersion, ev); err != nil {
				return err
			}
		}
		if m.MarketingConsent == ConsentPending {
			if err := queueMail(ctx, tx, MailConsentConfirm, m.ID, *m.Email, m.Language); err != nil {
				return err
			}
			if err := countFunnel(ctx, tx, day, homeStoreID, SourceTill, "submissions"); err != nil {
				return err
			}
		}
		m.LinkedTransactions, err = linkMember(ctx, tx, m)
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// memberConflict names the field a unique violation on members is about.
func memberConflict(err error) error {
	constraint, ok := uniqueViolation(err)
	if !ok {
		return fmt.Errorf("create member: %w", err)
	}
	field := map[string]string{"members_card_key": "card", "members_email_key": "email", "members_phone_key": "phone"}[constraint]
	if field == "" {
		field = "member"
	}
	return &Error{Code: ECONFLICT, Message: "a member with this " + field + " exists", Fields: map[string]string{field: "belongs to another member"}}
}

func recordConsent(ctx context.Context, tx pgx.Tx, memberID int64, granted bool, textVersion string, ev ConsentEvidence) error {
	var ip *string
	if ev.IP != "" {
		ip = &ev.IP
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO consents (member_id, purpose, granted, source, text_version, ip, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6::inet, $7)`,
		memberID, PurposeMarketingEmail, granted, ev.Source, textVersion, ip, ev.UserAgent)
	if err != nil {
		return fmt.Errorf("record consent of member %d: %w", memberID, err)
	}
	return nil
}

// MemberLookup is what a till needs at checkout.
type MemberLookup struct {
	ID        int64   `json:"id"`
	Card      string  `json:"card"`
	Name      string  `json:"name"`
	Status    string  `json:"status"`
	HomeStore string  `json:"home_store,omitempty"`
	Tier      *string `json:"tier"`
	// DiscountPercent is the club discount the till applies.
	DiscountPercent float64 `json:"discount_percent"`
	// Birthday is left out when the member gave none; the till may wish a happy birthday.
	Birthday Birthday `json:"birthday,omitzero"`
	// Points and Vouchers are there when a reward program is set or the member has vouchers
	// (lookupRewardsSQL).
	Points   *LookupPoints   `json:"points,omitempty"`
	Vouchers []LookupVoucher `json:"vouchers,omitzero"`
}

// LookupPoints is the member's balance and the active rewards, cheapest first, with whether the
// balance buys each.
type LookupPoints struct {
	Balance int            `json:"balance"`
	Rewards []LookupReward `json:"rewards"`
}

// LookupReward is an active reward as the till offers it.
type LookupReward struct {
	Code       string `json:"code"`
	Name       string `json:"name"`
	CostPoints int    `json:"cost_points"`
	Affordable bool   `json:"affordable"`
}

// LookupVoucher is an unused, unexpired voucher of the member.
type LookupVoucher struct {
	Code      string    `json:"code"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
}

// lookupRewardsSQL reads, in one statement, whether a program is set, member $1's balance, the
// active rewards and the member's vouchers unused and unexpired at $2, the lists as JSON.
const lookupRewardsSQL = `
    SELECT EXISTS (SELECT 1 FROM reward_program),
           (SELECT coalesce(sum(l.points), 0) FROM points_ledger l WHERE l.member_id = $1),
           (SELECT coalesce(json_agg(json_build_object('code', r.code, 'name', r.name, 'cost_points', r.cost_points)
                                     ORDER BY r.cost_points, r.code), '[]')
            FROM rewards r WHERE r.active),
           (SELECT coalesce(json_agg(json_build_object('code', v.code, 'name', r.name, 'expires_at', v.expires_at)
                                     ORDER BY v.expires_at, v.code), '[]')
            FROM vouchers v JOIN rewards r ON r.code = v.reward_code
            WHERE v.member_id = $1 AND v.used_at IS NULL AND v.expires_at > $2)`

// addRewards fills out's Points and Vouchers when a program is set or the member has vouchers.
func (db *DB) addRewards(ctx context.Context, out *MemberLookup) error {
	var program bool
	var balance int
	var rewards []LookupReward
	var vouchers []LookupVoucher
	if err := db.Pool.QueryRow(ctx, lookupRewardsSQL, out.ID, db.Now()).Scan(&program, &balance, &rewards, &vouchers); err != nil {
		return fmt.Errorf("look up member %d: rewards: %w", out.ID, err)
	}
	if !program && len(vouchers) == 0 {
		return nil
	}
	for i := range rewards {
		rewards[i].Affordable = balance >= rewards[i].CostPoints
	}
	out.Points = &LookupPoints{Balance: balance, Rewards: rewards}
	out.Vouchers = vouchers
	return nil
}

// LookupMember finds the member with this card, email or phone (exactly one is given), or
// ENOTFOUND. Erased members are not found.
func (db *DB) LookupMember(ctx context.Context, card, email, phone string) (*MemberLookup, error) {
	fe := FieldErrors{}
	given := 0
	for _, v := range []string{card, email, phone} {
		if v != "" {
			given++
		}
	}
	if given != 1 {
		fe.Add("card", "give exactly one of card, email or phone")
		return nil, fe.Err("invalid lookup")
	}
	var where string
	var arg string
	switch {
	case card != "":
		if !ValidCard(card) {
			fe.Add("card", "must be 13 digits ending in a correct EAN-13 check digit")
		}
		where, arg = "m.card = $1", card
	case email != "":
		e, ok := NormalizeEmail(email)
		if !ok {
			fe.Add("email", "must be an email address")
		}
		where, arg = "lower(m.email) = $1", e
	default:
		ph, ok := NormalizePhone(phone)
		if !ok {
			fe.Add("phone", "must be a phone number")
		}
		where, arg = "m.phone = $1", ph
	}
	if err := fe.Err("invalid lookup"); err != nil {
		return nil, err
	}
	var out MemberLookup
	err := db.Pool.QueryRow(ctx, `
		SELECT m.id, m.card, m.name, m.status, coalesce(s.code, ''), m.birth_date
		FROM members m LEFT JOIN stores s ON s.id = m.home_store_id
		WHERE `+where+` AND m.status <> 'erased'`, arg).Scan(&out.ID, &out.Card, &out.Name, &out.Status, &out.HomeStore, &out.Birthday)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENOTFOUND, "no member found")
	}
	if err != nil {
		return nil, fmt.Errorf("look up member: %w", err)
	}
	if out.Tier, out.DiscountPercent, err = memberTier(ctx, db, out.ID); err != nil {
		return nil, err
	}
	if err := db.addRewards(ctx, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// memberColumns and scanMember read a Member; the query joins stores as s.
const memberColumns = `m.id, m.card, m.email, m.phone, m.name, coalesce(s.code, ''), m.status,
	m.marketing_consent, m.source, m.language, m.birth_date, m.joined_at`

func scanMember(row pgx.Row, m *Member) error {
	return row.Scan(&m.ID, &m.Card, &m.Email, &m.Phone, &m.Name, &m.HomeStore, &m.Status,
		&m.MarketingConsent, &m.Source, &m.Language, &m.Birthday, &m.JoinedAt)
}

// FindMemberByID returns member id with its home store code and language; ENOTFOUND when there is
// none. An erased member is returned with status "erased" and no personal data.
func (db *DB) FindMemberByID(ctx context.Context, id int64) (*Member, error) {
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
