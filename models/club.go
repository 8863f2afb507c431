package models

// The discount club's own flows: joining on the web with double opt-in, members changing their
// preferences, unsubscribing, exporting and erasing themselves, the join funnel and the queue of
// club mail. Handlers verify the signed tokens (token.go) and pass the member id here.
//
// STUBS: the signatures below are the agreed API; the bodies are being written.

import (
	"context"
	"errors"
	"time"
)

var errNotImplemented = errors.New("not implemented yet")

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
func (db *DB) Join(ctx context.Context, in JoinInput, ev ConsentEvidence) (*JoinResult, error) {
	return nil, errNotImplemented
}

// ConfirmMember completes the double opt-in of member id: a pending member becomes active, a
// pending marketing consent becomes confirmed and is recorded (time, ev's IP and user agent, the
// consent text version given at sign-up), the welcome mail is queued and the confirmation counted
// in the funnel. first is false when it was already confirmed (a second click changes nothing and
// queues nothing). An erased or purged member is ENOTFOUND.
func (db *DB) ConfirmMember(ctx context.Context, id int64, ev ConsentEvidence) (m *Member, first bool, err error) {
	return nil, false, errNotImplemented
}

// GetMember returns member id with its home store code and language; ENOTFOUND when there is
// none. An erased member is returned with status "erased" and no personal data.
func (db *DB) GetMember(ctx context.Context, id int64) (*Member, error) {
	return nil, errNotImplemented
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
// missing). Giving marketing consent from the preferences page counts as confirmed (the member
// reached it from a link in their own mailbox) and is recorded with ev; taking it back is recorded
// as a withdrawal.
func (db *DB) UpdatePreferences(ctx context.Context, id int64, in PreferencesInput, ev ConsentEvidence) (*Member, error) {
	return nil, errNotImplemented
}

// Unsubscribe withdraws member id's marketing consent at once and records the withdrawal with ev.
// changed is false when there was no consent to withdraw (a repeated click is harmless).
// ENOTFOUND for a missing member; an erased one is already unsubscribed (changed false, no error).
func (db *DB) Unsubscribe(ctx context.Context, id int64, ev ConsentEvidence) (changed bool, err error) {
	return false, errNotImplemented
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
	return nil, errNotImplemented
}

// EraseMember removes member id's personal data (name, email, phone, consent evidence, queued
// mail, and the card/email/phone presented on their transactions) and marks it erased. The
// transactions stay, linked to the anonymous member, so the shop's figures do not change.
// ENOTFOUND for a missing member; erasing twice is harmless.
func (db *DB) EraseMember(ctx context.Context, id int64) error {
	return errNotImplemented
}

// PurgeUnconfirmed deletes web sign-ups still pending that joined before cutoff (their
// transactions, if any were linked, go back to unmatched) and returns how many.
func (db *DB) PurgeUnconfirmed(ctx context.Context, cutoff time.Time) (int64, error) {
	return 0, errNotImplemented
}

// CountJoinView counts one view of the join form (store: the ?store= code it was opened with,
// "" for none; unknown codes count as none).
func (db *DB) CountJoinView(ctx context.Context, store string) error {
	return errNotImplemented
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

// JoinFunnel returns the funnel per day, store and source for days in [from, to] (inclusive),
// optionally for one store, plus the totals over the range per source.
func (db *DB) JoinFunnel(ctx context.Context, from, to time.Time, store string) (days []FunnelRow, totals []FunnelRow, err error) {
	return nil, nil, errNotImplemented
}

// ClubMail is one queued club mail.
type ClubMail struct {
	ID       int64
	Kind     string // Mail*
	MemberID int64
	To       string
	Language string
	Attempts int
}

// ClaimClubMail takes up to limit due mails for sending (FOR UPDATE SKIP LOCKED, so replicas
// share the queue) and leases them for lease: a sender that dies leaves them to be claimed again.
func (db *DB) ClaimClubMail(ctx context.Context, limit int, lease time.Duration) ([]ClubMail, error) {
	return nil, errNotImplemented
}

// ClubMailSent marks mail id delivered.
func (db *DB) ClubMailSent(ctx context.Context, id int64) error { return errNotImplemented }

// ClubMailFailed records a failed attempt at mail id: with retryAt it is tried again then, with
// nil it is given up (permanent failure).
func (db *DB) ClubMailFailed(ctx context.Context, id int64, cause error, retryAt *time.Time) error {
	return errNotImplemented
}
