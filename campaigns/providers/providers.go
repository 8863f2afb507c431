// Package providers reads the webhooks of mail providers: Amazon SES through SNS (sns.go),
// SendGrid (sendgrid.go), Mailgun (mailgun.go) and Postmark (postmark.go). Each request is
// checked by the provider's own scheme before anything in it is believed, and turned into
// Events: hard and soft bounces and spam complaints, each with the provider's id for it (a
// delivery repeated by the provider is recognised by it) and the Message-ID of the mail where
// the provider gives it. What an event changes is campaigns/tracking's; this package touches no
// database and no HTTP framework.
package providers

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/regulars/regulars/models"
)

// Provider names, also the source recorded with a complaint's consent withdrawal.
const (
	SES      = "ses"
	SendGrid = "sendgrid"
	Mailgun  = "mailgun"
	Postmark = "postmark"
)

// Kind is what an event reports.
type Kind string

// Event kinds.
const (
	HardBounce Kind = "hard" // the address does not exist: suppressed at once
	SoftBounce Kind = "soft" // counted: suppressed after tracking.SoftBounceLimit in its window
	Complaint  Kind = "complaint"
)

// Event is one report about the mail to one recipient.
type Event struct {
	Provider string
	Kind     Kind
	Email    string
	// MessageID is the Message-ID header of the mail (without angle brackets), "" when the
	// provider does not give it.
	MessageID string
	Reason    string
	// Keys are the event's one-time ids (tracking.Report.Keys): the provider's id for it, and
	// for Mailgun the signature's token too.
	Keys []string
}

// Limits of what a request may hold.
const (
	// MaxBody bounds a webhook request's body: SendGrid posts batches of up to 768 KB.
	MaxBody = 1 << 20
	// MaxEvents bounds the events taken from one request.
	MaxEvents = 5000
	// maxIDLen bounds an id taken from a request (tracking stores at most 250 characters).
	maxIDLen = 250
)

// futureSkew is how far ahead of our clock a signed timestamp may be (clocks differ a little).
const futureSkew = 5 * time.Minute

// unauthorized is the error of every request that fails its provider's check: 401, and
// nothing is changed.
func unauthorized(format string, args ...any) error {
	return models.Errorf(models.EUNAUTHORIZED, format, args...)
}

// malformed is the error of a request that passed its check but cannot be read: 400.
func malformed(format string, args ...any) error {
	return models.Errorf(models.EMALFORMED, format, args...)
}

// fresh reports whether a signed timestamp is within window before now (and not more than
// futureSkew after it): an older signature is a replay.
func fresh(ts, now time.Time, window time.Duration) bool {
	return !ts.Before(now.Add(-window)) && !ts.After(now.Add(futureSkew))
}

// bareMessageID is a Message-ID header value without its angle brackets and spaces; an id
// longer than any real one is dropped.
func bareMessageID(s string) string {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
	if len(s) > maxIDLen {
		return ""
	}
	return s
}

// eventKey is the provider's id for an event, or a digest of the event as posted when the
// provider gave none (or one too long to keep): the same event posted again has the same key.
func eventKey(id string, raw []byte) string {
	if id != "" && len(id) <= maxIDLen {
		return id
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Set is the configured providers; a nil field is a provider that is not configured, whose
// endpoint answers 404.
type Set struct {
	SES      *SNSVerifier
	SendGrid *SendGridVerifier
	Mailgun  *MailgunVerifier
	Postmark *PostmarkVerifier
}

// Settings are the providers' secrets as the REGULARS_* variables give them; empty: not
// configured.
type Settings struct {
	// SESTopicARNs are the SNS topics whose notifications are accepted (REGULARS_SES_TOPIC_ARNS).
	SESTopicARNs []string
	// SNSFetch fetches signing certificates and visits subscription URLs; nil: HTTPSFetch.
	SNSFetch Fetcher
	// SendGridKey is the Event Webhook's verification key, base64 DER (REGULARS_SENDGRID_WEBHOOK_KEY).
	SendGridKey string
	// MailgunKey is the HTTP webhook signing key (REGULARS_MAILGUN_SIGNING_KEY).
	MailgunKey string
	// PostmarkAuth is "user:password" of the webhook URL's basic auth (REGULARS_POSTMARK_WEBHOOK_AUTH).
	PostmarkAuth string
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// New builds the Set of the configured providers; a setting that cannot be used (a SendGrid
// key that is no P-256 public key, a Postmark auth without a colon) is an error naming it.
func New(s Settings) (*Set, error) {
	now := s.Now
	if now == nil {
		now = time.Now
	}
	set := &Set{}
	if len(s.SESTopicARNs) > 0 {
		fetch := s.SNSFetch
		if fetch == nil {
			fetch = HTTPSFetch(nil)
		}
		set.SES = NewSNSVerifier(s.SESTopicARNs, fetch, now)
	}
	if s.SendGridKey != "" {
		v, err := NewSendGridVerifier(s.SendGridKey, now)
		if err != nil {
			return nil, err
		}
		set.SendGrid = v
	}
	if s.MailgunKey != "" {
		set.Mailgun = &MailgunVerifier{key: []byte(s.MailgunKey), now: now}
	}
	if s.PostmarkAuth != "" {
		v, err := NewPostmarkVerifier(s.PostmarkAuth)
		if err != nil {
			return nil, err
		}
		set.Postmark = v
	}
	return set, nil
}
