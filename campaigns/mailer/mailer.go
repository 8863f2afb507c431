// Package mailer sends the server's email: to an SMTP relay through a small pool of reused
// connections with retries, or, when no relay is configured, into an outbox folder of .eml
// files that any mail client opens. It is built on github.com/wneessen/go-mail.
package mailer

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/wneessen/go-mail"
)

// Sender delivers messages. Implementations are safe for concurrent use.
type Sender interface {
	// Send delivers m or returns an error that IsPermanent or IsTemporary classifies.
	Send(ctx context.Context, m *Message) error
	// Close releases connections; Send must not be called afterwards.
	Close() error
}

// New returns the SMTP sender when smtpURL is set (see ParseSMTPURL) and the outbox sender
// writing into outboxDir otherwise, as the contract's REGULARS_SMTP_URL prescribes.
func New(smtpURL, outboxDir string, opts ...Option) (Sender, error) {
	if smtpURL != "" {
		cfg, err := ParseSMTPURL(smtpURL)
		if err != nil {
			return nil, err
		}
		return NewSMTP(cfg, opts...)
	}
	return NewOutbox(outboxDir, opts...)
}

// Option tunes a sender; options that do not apply to a sender are ignored by it.
type Option func(*options)

type options struct {
	poolSize    int
	attempts    int
	baseBackoff time.Duration
	maxBackoff  time.Duration
	timeout     time.Duration
	tlsConfig   *tls.Config
	helo        string
	dkim        *dkimKey
	now         func() time.Time
	// noPipelining sends one command at a time even to a relay that offers PIPELINING (tests
	// of go-mail's path; export_test.go).
	noPipelining bool
}

type dkimKey struct {
	domain, selector string
	key              crypto.Signer
}

func defaultOptions() options {
	return options{
		poolSize:    4,
		attempts:    4,
		baseBackoff: 500 * time.Millisecond,
		maxBackoff:  30 * time.Second,
		timeout:     30 * time.Second,
		now:         time.Now,
	}
}

func buildOptions(opts []Option) options {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithPoolSize sets how many SMTP connections are kept open and used in parallel (default 4);
// it bounds the concurrency towards the relay, whatever the number of calling goroutines.
func WithPoolSize(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.poolSize = n
		}
	}
}

// WithRetry sets the total number of attempts for a temporary failure (default 4) and the first
// backoff delay (default 500ms), which doubles after every attempt up to 30s.
func WithRetry(attempts int, baseBackoff time.Duration) Option {
	return func(o *options) {
		if attempts > 0 {
			o.attempts = attempts
		}
		if baseBackoff > 0 {
			o.baseBackoff = baseBackoff
		}
	}
}

// WithTimeout sets the timeout of every SMTP dial and command (default 30s).
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithTLSConfig replaces the TLS configuration for tls=starttls and tls=tls, e.g. to trust a
// private CA; ServerName is filled in from the URL's host when empty.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) { o.tlsConfig = cfg }
}

// WithHELO sets the name sent in EHLO (default: the machine's host name).
func WithHELO(name string) Option {
	return func(o *options) { o.helo = name }
}

// WithDKIM signs every message for domain with the key published under selector; the key
// is RSA or Ed25519 (see ParseDKIMKey).
func WithDKIM(domain, selector string, key crypto.Signer) Option {
	return func(o *options) { o.dkim = &dkimKey{domain: domain, selector: selector, key: key} }
}

// WithClock sets the clock used for the Date header and outbox file names, for tests.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// ParseDKIMKey reads a PEM encoded RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8) private key.
func ParseDKIMKey(pemBytes []byte) (crypto.Signer, error) {
	key, err := mail.PrivKeyFromPEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("parse DKIM key: %w", err)
	}
	return key, nil
}

// Errors that Send's errors match with errors.Is.
var (
	// ErrTemporary marks a failure worth retrying later: a 4xx reply or a network error that
	// outlived the retries.
	ErrTemporary = errors.New("temporary delivery failure")
	// ErrPermanent marks a failure that will not go away by retrying: a 5xx reply or a
	// message that cannot be built.
	ErrPermanent = errors.New("permanent delivery failure")
	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("mailer closed")
)

// SendError is the error Send returns when a message was not delivered.
type SendError struct {
	// MessageID identifies the message that failed.
	MessageID string
	// Code is the SMTP reply code, 0 when the failure had none (network, invalid message).
	Code int
	// Temporary tells whether a later retry may succeed.
	Temporary bool
	// Attempts is how many delivery attempts were made.
	Attempts int
	// Err is the last underlying error.
	Err error
}

// Error describes the failure with its class, code and attempts.
func (e *SendError) Error() string {
	class := "permanent"
	if e.Temporary {
		class = "temporary"
	}
	code := ""
	if e.Code != 0 {
		code = fmt.Sprintf(" (SMTP %d)", e.Code)
	}
	return fmt.Sprintf("send message %s: %s failure%s after %d attempt(s): %v", e.MessageID, class, code, e.Attempts, e.Err)
}

// Unwrap exposes the underlying error.
func (e *SendError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrTemporary) and errors.Is(err, ErrPermanent) work.
func (e *SendError) Is(target error) bool {
	return (target == ErrTemporary && e.Temporary) || (target == ErrPermanent && !e.Temporary)
}

// IsTemporary reports whether err is a delivery failure that may succeed when retried later.
func IsTemporary(err error) bool { return errors.Is(err, ErrTemporary) }

// IsPermanent reports whether err is a delivery failure that retrying will not fix.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }
