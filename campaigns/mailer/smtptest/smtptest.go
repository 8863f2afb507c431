// Package smtptest runs an in-process SMTP server on 127.0.0.1 for tests: it records every
// message it accepts, counts connections, can require AUTH PLAIN, can be told to fail the
// next RCPT or DATA commands with a chosen reply code, and can close connections between
// mails or after taking a mail without replying.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/mail"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	// From and To are the envelope (MAIL FROM and RCPT TO).
	From string
	To   []string
	// Data is the message exactly as received, CRLF line endings included.
	Data []byte
	// Header is Data's parsed header; nil when Data did not parse.
	Header mail.Header
	// User is the authenticated user name, empty without AUTH.
	User string
	// Conn numbers the connection the message came on, from 1.
	Conn int
	// TLS tells whether the connection was encrypted (after STARTTLS).
	TLS bool
}

// Option configures a Server.
type Option func(*Server)

// WithAuth makes the server offer AUTH PLAIN and refuse MAIL until a client authenticates
// with user and password. Plain-text AUTH is allowed because the server listens on loopback.
func WithAuth(user, password string) Option {
	return func(s *Server) { s.user, s.password = user, password }
}

// WithStartTLS makes the server offer STARTTLS with a fresh self-signed certificate for
// 127.0.0.1; clients trust it through CertPool.
func WithStartTLS() Option {
	return func(s *Server) { s.startTLS = true }
}

// WithDiscard keeps only counts, envelopes and headers instead of whole messages, for load
// tests that send more mail than memory should hold.
func WithDiscard() Option {
	return func(s *Server) { s.discard = true }
}

// Server is a running SMTP server. Its methods are safe for concurrent use.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// Host and Port are Addr's parts.
	Host string
	Port int

	user, password string
	discard        bool
	startTLS       bool
	certPool       *x509.CertPool

	smtp     *smtp.Server
	listener net.Listener
	serveErr chan error

	mu        sync.Mutex
	messages  []Message
	conns     map[net.Conn]int
	connCount int
	failRcpt  []injectedFailure
	failData  []injectedFailure
	// closeEvery and closeCode: see CloseEvery. dropReplies: see DropDataReplies.
	closeEvery  int
	closeCode   int
	dropReplies int
	perConn     map[int]int // messages accepted so far on each connection
}

type injectedFailure struct{ code int }

// New starts a server for the test and stops it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Start(opts...)
	if err != nil {
		t.Fatalf("start SMTP test server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stop SMTP test server: %v", err)
		}
	})
	return s
}

// Start starts a server on a free loopback port; Close stops it.
func Start(opts ...Option) (*Server, error) {
	s := &Server{conns: make(map[net.Conn]int), perConn: make(map[int]int), serveErr: make(chan error, 1)}
	for _, opt := range opts {
		opt(s)
	}
	var tlsConfig *tls.Config
	if s.startTLS {
		cert, pool, err := selfSignedCertificate()
		if err != nil {
			return nil, err
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.certPool = pool
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	addr := listener.Addr().(*net.TCPAddr)
	s.Addr, s.Host, s.Port = addr.String(), addr.IP.String(), addr.Port
	s.listener = &countingListener{Listener: listener, server: s}

	s.smtp = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.smtp.Domain = "smtptest.localhost"
	s.smtp.AllowInsecureAuth = true
	s.smtp.TLSConfig = tlsConfig
	s.smtp.MaxMessageBytes = 32 << 20
	s.smtp.ErrorLog = discardLogger{}
	go func() { s.serveErr <- s.smtp.Serve(s.listener) }()
	return s, nil
}

// URL is the REGULARS_SMTP_URL pointing at this server, with tls=starttls when the server
// offers it and tls=none otherwise, and with credentials when the server requires them.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr, RawQuery: "tls=none"}
	if s.startTLS {
		u.RawQuery = "tls=starttls"
	}
	if s.user != "" {
		u.User = url.UserPassword(s.user, s.password)
	}
	return u.String()
}

// CertPool holds the certificate of a WithStartTLS server, for the client's RootCAs; nil
// otherwise.
func (s *Server) CertPool() *x509.CertPool { return s.certPool }

// Close stops the server and closes all connections.
func (s *Server) Close() error {
	if err := s.smtp.Close(); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return fmt.Errorf("close SMTP server: %w", err)
	}
	if err := <-s.serveErr; err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// Messages returns a copy of the messages received so far, in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Count is the number of messages received so far.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.messages)
}

// Connections is the number of connections accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connCount
}

// FailRcpt makes the next n RCPT commands fail with code (e.g. 451 or 550).
func (s *Server) FailRcpt(n, code int) { s.addFailures(&s.failRcpt, n, code) }

// FailData makes the next n messages fail at the end of DATA with code (e.g. 451 or 554).
func (s *Server) FailData(n, code int) { s.addFailures(&s.failData, n, code) }

func (s *Server) addFailures(queue *[]injectedFailure, n, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		*queue = append(*queue, injectedFailure{code: code})
	}
}

// DropConnections closes every open connection abruptly, as a relay restart or a network
// failure would, so clients must notice and redial.
func (s *Server) DropConnections() {
	s.mu.Lock()
	open := make([]net.Conn, 0, len(s.conns))
	for conn := range s.conns {
		open = append(open, conn)
	}
	s.mu.Unlock()
	for _, conn := range open { // outside the lock: Close takes it to untrack the connection
		_ = conn.Close()
	}
}

// CloseEvery makes the server close a connection right after its every n-th accepted message
// (n = 0 turns this off), once the reply to DATA is sent, as a relay with a per-connection
// limit or an idle timeout does; when code is not 0 (e.g. 421) that reply is sent first, as
// Postfix does at its idle timeout. The client notices at its next command. The reply goes
// on the raw connection, so use a code only without STARTTLS.
func (s *Server) CloseEvery(n, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeEvery, s.closeCode = n, code
}

// DropDataReplies makes the next n messages be recorded as accepted and their connection be
// closed instead of sending the reply to DATA, as a relay that crashes after queueing a mail:
// the client cannot know the mail was taken.
func (s *Server) DropDataReplies(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropReplies += n
}

// afterMessage counts an accepted message on connection connID and tells what to do with the
// reply to its DATA.
func (s *Server) afterMessage(connID int) (action replyAction, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perConn[connID]++
	switch {
	case s.dropReplies > 0:
		s.dropReplies--
		return dropReply, 0
	case s.closeEvery > 0 && s.perConn[connID]%s.closeEvery == 0:
		return closeAfterReply, s.closeCode
	}
	return sendReply, 0
}

func (s *Server) nextFailure(queue *[]injectedFailure) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(*queue) == 0 {
		return nil
	}
	failure := (*queue)[0]
	*queue = (*queue)[1:]
	class := failure.code / 100
	return &smtp.SMTPError{
		Code:         failure.code,
		EnhancedCode: smtp.EnhancedCode{class, 0, 0},
		Message:      fmt.Sprintf("injected failure %d", failure.code),
	}
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	connID := s.conns[c.Conn()]
	s.mu.Unlock()
	tracked, _ := c.Conn().(*trackedConn)
	return &session{server: s, conn: connID, smtpConn: c, tracked: tracked}, nil
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
}

// session is one SMTP connection's state; go-smtp calls it from that connection's goroutine.
type session struct {
	server   *Server
	conn     int
	smtpConn *smtp.Conn
	tracked  *trackedConn // the raw connection; nil after STARTTLS
	user     string
	from     string
	to       []string
}

// AuthMechanisms offers PLAIN only when the server was given credentials.
func (ss *session) AuthMechanisms() []string {
	if ss.server.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth checks PLAIN credentials against the server's.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.server.user == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.server.user || password != ss.server.password {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.server.user != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.server.nextFailure(&ss.server.failRcpt); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read data: %w", err)
	}
	if err := ss.server.nextFailure(&ss.server.failData); err != nil {
		return err
	}
	_, isTLS := ss.smtpConn.TLSConnectionState()
	m := Message{From: ss.from, To: append([]string(nil), ss.to...), User: ss.user, Conn: ss.conn, TLS: isTLS}
	if parsed, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		m.Header = parsed.Header
	}
	if !ss.server.discard {
		m.Data = data
	}
	ss.server.record(m)
	if action, code := ss.server.afterMessage(ss.conn); action != sendReply && ss.tracked != nil {
		ss.tracked.onNextWrite(action, code)
	}
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *session) Logout() error { return nil }

// countingListener numbers accepted connections and remembers them for DropConnections.
type countingListener struct {
	net.Listener
	server *Server
}

func (l *countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	s := l.server
	s.mu.Lock()
	s.connCount++
	tracked := &trackedConn{Conn: conn, server: s}
	s.conns[tracked] = s.connCount
	s.mu.Unlock()
	return tracked, nil
}

// trackedConn forgets itself when closed so DropConnections only touches open connections.
type trackedConn struct {
	net.Conn
	server *Server
	once   sync.Once

	// next is what the next Write (the reply to DATA) does, set by the connection's own
	// goroutine before go-smtp writes that reply.
	next     replyAction
	nextCode int
}

// replyAction is what happens to the reply to an accepted message's DATA.
type replyAction int

const (
	sendReply       replyAction = iota
	closeAfterReply             // send it, then the closing reply if any, then close
	dropReply                   // close without sending it
)

func (c *trackedConn) onNextWrite(action replyAction, code int) { c.next, c.nextCode = action, code }

// Write sends b unless a pending action says otherwise; go-smtp writes each reply in one Write.
func (c *trackedConn) Write(b []byte) (int, error) {
	action, code := c.next, c.nextCode
	c.next, c.nextCode = sendReply, 0
	switch action {
	case dropReply:
		_ = c.Close()
		return 0, net.ErrClosed
	case closeAfterReply:
		n, err := c.Conn.Write(b)
		if err == nil && code != 0 {
			_, _ = fmt.Fprintf(c.Conn, "%d 4.4.2 smtptest closing connection\r\n", code)
		}
		_ = c.Close()
		return n, err
	}
	return c.Conn.Write(b)
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.server.mu.Lock()
		delete(c.server.conns, c)
		c.server.mu.Unlock()
	})
	return c.Conn.Close()
}

// selfSignedCertificate makes a short-lived ECDSA certificate for 127.0.0.1 and localhost.
func selfSignedCertificate() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("generate key: %w", err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("create certificate: %w", err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("parse certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(parsed)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: parsed}, pool, nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...interface{}) {}
func (discardLogger) Println(...interface{})        {}
