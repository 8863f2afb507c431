package mailer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// TLSMode is how the connection to the relay is encrypted.
type TLSMode string

// The TLS modes of REGULARS_SMTP_URL's tls parameter.
const (
	// TLSNone sends in the clear; only for a relay on the same host or private network.
	TLSNone TLSMode = "none"
	// TLSStartTLS upgrades a plain connection with STARTTLS and refuses to go on without it.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit TLSMode = "tls"
)

// SMTPConfig is a parsed REGULARS_SMTP_URL.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string
	Password string
	TLS      TLSMode
}

// String renders the config as a URL with the password masked, for logs.
func (c SMTPConfig) String() string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), RawQuery: "tls=" + string(c.TLS)}
	if c.Username != "" {
		u.User = url.UserPassword(c.Username, "xxxxx")
	}
	return u.String()
}

// ParseSMTPURL parses a URL such as smtp://user:pass@host:587?tls=starttls. tls is one of
// none, starttls (the default) and tls; the port defaults to 25, 587 or 465 accordingly.
// The scheme smtps means tls=tls. User and password are optional but go together; they are
// percent-decoded. Errors never repeat the URL, which may hold a password.
func ParseSMTPURL(raw string) (SMTPConfig, error) {
	var cfg SMTPConfig
	u, err := url.Parse(raw)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return cfg, fmt.Errorf("SMTP URL is not a valid URL: %w", err)
	}
	switch u.Scheme {
	case "smtp":
		cfg.TLS = TLSStartTLS
	case "smtps":
		cfg.TLS = TLSImplicit
	case "":
		return cfg, errors.New("SMTP URL has no scheme: want smtp://host:port?tls=none|starttls|tls")
	default:
		return cfg, fmt.Errorf("SMTP URL scheme %q is not supported: want smtp or smtps", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return cfg, errors.New("SMTP URL has no host: want smtp://host:port")
	}
	if u.Path != "" && u.Path != "/" {
		return cfg, fmt.Errorf("SMTP URL must not have a path, got %q", u.Path)
	}
	if u.Fragment != "" {
		return cfg, errors.New("SMTP URL must not have a fragment")
	}
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return cfg, fmt.Errorf("SMTP URL query: %w", err)
	}
	for key, values := range query {
		if key != "tls" {
			return cfg, fmt.Errorf("SMTP URL parameter %q is not supported: only tls", key)
		}
		if len(values) != 1 {
			return cfg, errors.New("SMTP URL parameter tls is given more than once")
		}
		switch mode := TLSMode(strings.ToLower(values[0])); mode {
		case TLSNone, TLSStartTLS, TLSImplicit:
			if u.Scheme == "smtps" && mode != TLSImplicit {
				return cfg, fmt.Errorf("SMTP URL scheme smtps contradicts tls=%s", mode)
			}
			cfg.TLS = mode
		default:
			return cfg, fmt.Errorf("SMTP URL tls=%q is not one of none, starttls, tls", values[0])
		}
	}
	cfg.Host = u.Hostname()
	switch cfg.TLS {
	case TLSNone:
		cfg.Port = 25
	case TLSStartTLS:
		cfg.Port = 587
	case TLSImplicit:
		cfg.Port = 465
	}
	if p := u.Port(); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return cfg, fmt.Errorf("SMTP URL port %q is not a number from 1 to 65535", p)
		}
		cfg.Port = port
	} else if strings.HasSuffix(u.Host, ":") {
		return cfg, errors.New("SMTP URL has an empty port")
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		password, hasPassword := u.User.Password()
		if cfg.Username == "" || !hasPassword || password == "" {
			return cfg, errors.New("SMTP URL credentials need both a user and a password (user:pass@host)")
		}
		cfg.Password = password
	}
	return cfg, nil
}

// SMTP is the Sender that delivers to a relay. It keeps at most PoolSize connections, each
// used by one Send at a time and reused for the next, so a campaign does not dial once per
// mail. Temporary failures (4xx replies, network errors) are retried with exponential
// backoff on the same slot, redialling when the connection broke; 5xx replies are not
// retried.
type SMTP struct {
	cfg   SMTPConfig
	opts  options
	slots chan *smtpSlot
	done  chan struct{}
	once  sync.Once
	dials atomic.Int64
}

// smtpSlot is one pooled connection with its own go-mail Client, so no go-mail state is ever
// shared between goroutines.
type smtpSlot struct {
	client *mail.Client
	conn   *smtp.Client // nil while not connected
}

// NewSMTP returns a Sender for the relay in cfg. It does not dial: connections are opened by
// the first sends that need them.
func NewSMTP(cfg SMTPConfig, opts ...Option) (*SMTP, error) {
	o := buildOptions(opts)
	s := &SMTP{cfg: cfg, opts: o, slots: make(chan *smtpSlot, o.poolSize), done: make(chan struct{})}
	for range o.poolSize {
		client, err := newGoMailClient(cfg, o)
		if err != nil {
			return nil, err
		}
		s.slots <- &smtpSlot{client: client}
	}
	return s, nil
}

func newGoMailClient(cfg SMTPConfig, o options) (*mail.Client, error) {
	// No NOOP before each mail and no NOOP + RSET after it (go-mail's connection checks): they
	// were three of a mail's seven round trips, 22% of the server's CPU while sending
	// (docs/benchmarks.md).
	// A 250 to the end of DATA already ends the transaction (RFC 5321 4.1.1.4), so the RSET
	// resets nothing; a connection the relay closed meanwhile is noticed by the next MAIL
	// instead of the NOOP, and attempt redials for it (see isStaleConn). go-mail still sends
	// RSET itself after a refused MAIL or RCPT; attempt sends it after the other failures.
	clientOpts := []mail.Option{mail.WithPort(cfg.Port), mail.WithTimeout(o.timeout), mail.WithoutNoop(), mail.WithoutRset()}
	switch cfg.TLS {
	case TLSNone:
		clientOpts = append(clientOpts, mail.WithTLSPortPolicy(mail.NoTLS))
	case TLSStartTLS:
		clientOpts = append(clientOpts, mail.WithTLSPortPolicy(mail.TLSMandatory))
	case TLSImplicit:
		clientOpts = append(clientOpts, mail.WithSSL())
	default:
		return nil, fmt.Errorf("smtp: unknown TLS mode %q", cfg.TLS)
	}
	if cfg.TLS != TLSNone {
		tlsConfig := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
		if o.tlsConfig != nil {
			tlsConfig = o.tlsConfig.Clone()
			if tlsConfig.ServerName == "" {
				tlsConfig.ServerName = cfg.Host
			}
		}
		clientOpts = append(clientOpts, mail.WithTLSConfig(tlsConfig))
	}
	if cfg.Username != "" {
		// PLAIN is offered by virtually every relay; go-mail refuses to send it unencrypted
		// except to localhost.
		clientOpts = append(clientOpts, mail.WithSMTPAuth(mail.SMTPAuthPlain),
			mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	if o.helo != "" {
		clientOpts = append(clientOpts, mail.WithHELO(o.helo))
	}
	client, err := mail.NewClient(cfg.Host, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("smtp: configure client for %s: %w", cfg, err)
	}
	return client, nil
}

// Dials counts the connections opened so far, to check that connections are reused.
func (s *SMTP) Dials() int64 { return s.dials.Load() }

// Send delivers m, waiting for a free connection first. ctx bounds the wait for a connection,
// the dial and the backoff between attempts; an SMTP exchange in progress is bounded by the
// timeout instead.
func (s *SMTP) Send(ctx context.Context, m *Message) error {
	var slot *smtpSlot
	select {
	case <-s.done:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("send message %s: wait for a connection: %w", m.MessageID, ctx.Err())
	case slot = <-s.slots:
	}
	defer func() { s.slots <- slot }()

	for attempt := 1; ; attempt++ {
		err := s.attempt(ctx, slot, m)
		if err == nil {
			return nil
		}
		code, temporary := classify(err)
		if !temporary || attempt >= s.opts.attempts {
			return &SendError{MessageID: m.MessageID, Code: code, Temporary: temporary, Attempts: attempt, Err: err}
		}
		timer := time.NewTimer(s.backoff(attempt))
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("send message %s: gave up after %d attempt(s), last error %v: %w", m.MessageID, attempt, err, ctx.Err())
		case <-timer.C:
		}
	}
}

// backoff is base·2^(attempt-1), capped.
func (s *SMTP) backoff(attempt int) time.Duration {
	d := s.opts.baseBackoff << (attempt - 1)
	if d <= 0 || d > s.opts.maxBackoff {
		d = s.opts.maxBackoff
	}
	return d
}

// attempt makes one delivery try on slot, dialling when it has no connection. A pooled
// connection that the relay has closed meanwhile (idle timeout, 421, network) shows as the
// mail's first command failing before DATA was accepted; it is replaced at once and the mail
// tried again on the new one, without counting as a failed attempt, since nothing of the mail
// was sent on it. A failure during or after DATA is never tried again here: whether the relay
// took the mail is then unknown, and Send's retry (or the caller's outcome) decides.
func (s *SMTP) attempt(ctx context.Context, slot *smtpSlot, m *Message) error {
	msg, err := m.build(s.opts.now(), s.opts.dkim)
	if err != nil {
		return invalidMessageError{err}
	}
	reused := slot.conn != nil
	if !reused {
		if err := s.dial(ctx, slot); err != nil {
			return err
		}
	}
	err = s.send(slot, msg)
	if err != nil && reused && isStaleConn(err) {
		slot.drop()
		if err := s.dial(ctx, slot); err != nil {
			return err
		}
		err = s.send(slot, msg)
	}
	if err != nil && !s.resetAfter(slot, err) {
		slot.drop()
	}
	return err
}

// send makes one SMTP transaction for msg on the slot's connection: pipelined when the relay
// offers PIPELINING (sendPipelined), otherwise go-mail's one command at a time.
func (s *SMTP) send(slot *smtpSlot, msg *mail.Msg) error {
	if ok, _ := slot.conn.Extension("PIPELINING"); ok && !s.opts.noPipelining {
		return sendPipelined(slot.conn, msg, s.opts.timeout)
	}
	return slot.client.SendWithSMTPClient(slot.conn, msg)
}

// resetAfter brings the session back to a clean state after the failed send err and reports
// whether the connection can be kept. go-mail has already sent RSET after a refused MAIL or
// RCPT (with WithoutRset, its ResetWithSMTPClient does nothing, so it is sent here directly).
// A connection that failed its check, broke, or failed while writing the data is in an unknown
// state and is not kept.
func (s *SMTP) resetAfter(slot *smtpSlot, err error) bool {
	reason, code, ok := sendFailure(err)
	if !ok {
		return false
	}
	switch reason {
	case mail.ErrConnCheck, mail.ErrWriteContent:
		return false
	case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrNoUnencoded:
		return true // nothing was sent
	}
	if isConnLost(code) {
		return false
	}
	if slot.conn.UpdateDeadline(s.opts.timeout) != nil {
		return false
	}
	return slot.conn.Reset() == nil
}

func (s *SMTP) dial(ctx context.Context, slot *smtpSlot) error {
	conn, err := slot.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		if conn != nil {
			_ = conn.Close()
		}
		return fmt.Errorf("connect to %s: %w", s.cfg, err)
	}
	s.dials.Add(1)
	slot.conn = conn
	return nil
}

// drop closes the slot's connection without QUIT: it is broken or in an unknown state.
func (slot *smtpSlot) drop() {
	if slot.conn != nil {
		_ = slot.conn.Close()
		slot.conn = nil
	}
}

// Close waits for sends in progress, then says QUIT on every pooled connection. It reports
// only a QUIT the relay refused, not a connection it had already closed.
func (s *SMTP) Close() error {
	var errs []error
	s.once.Do(func() {
		close(s.done)
		for range s.opts.poolSize {
			slot := <-s.slots
			if slot.conn != nil {
				// A relay that has closed an idle connection meanwhile (its timeout) answers
				// QUIT with 421 or not at all: nothing is lost, so only other replies count.
				var reply *textproto.Error
				if err := slot.client.CloseWithSMTPClient(slot.conn); errors.As(err, &reply) && reply.Code != 421 {
					errs = append(errs, err)
				}
				slot.drop()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("smtp: close: %w", err)
	}
	return nil
}

// isStaleConn tells whether err is a pooled connection found closed before any of the mail's
// data went out: the connection check failed, or MAIL, RCPT or the DATA command itself (whose
// 354 must come before any content is sent) met a broken connection or a 421 (the relay closing
// the channel, as it does at its idle timeout).
func isStaleConn(err error) bool {
	reason, code, ok := sendFailure(err)
	if !ok {
		return false
	}
	switch reason {
	case mail.ErrConnCheck:
		return true
	case mail.ErrSMTPMailFrom, mail.ErrSMTPRcptTo, mail.ErrSMTPData:
		return isConnLost(code)
	}
	return false
}

// isConnLost tells whether a failed command met a broken connection (no reply code: EOF, reset,
// timeout) or a 421 reply, after which the relay closes the connection, by the failure's reply
// code (sendFailure): go-mail's SendError does not unwrap to the reply, so its code is the only
// sign.
func isConnLost(code int) bool {
	return code == 0 || code == 421
}

// classify returns the SMTP reply code in err, if any, and whether retrying may help.
// Replies decide by their class (4xx temporary, 5xx permanent); network errors are
// temporary; a message go-mail cannot even address and a certificate that does not verify
// are permanent.
func classify(err error) (code int, temporary bool) {
	if errors.As(err, new(invalidMessageError)) {
		return 0, false
	}
	if reason, code, ok := sendFailure(err); ok {
		if code >= 400 {
			return code, code < 500
		}
		switch reason {
		case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrNoUnencoded:
			return 0, false
		}
		return 0, true
	}
	var reply *textproto.Error
	if errors.As(err, &reply) {
		return reply.Code, reply.Code < 500
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuthority) || errors.As(err, &hostnameErr) {
		return 0, false
	}
	return 0, true
}

// invalidMessageError marks a message that cannot be built; sending it again cannot help.
type invalidMessageError struct{ err error }

func (e invalidMessageError) Error() string { return "build message: " + e.err.Error() }
func (e invalidMessageError) Unwrap() error { return e.err }
