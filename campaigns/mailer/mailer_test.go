package mailer_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/campaigns/mailer/smtptest"
)

// part is one leaf of a parsed MIME tree.
type part struct {
	contentType string
	contentID   string
	body        []byte
}

// parseMIME walks a message body and returns the top-level media type, the media types of the
// multipart containers met on the way, and the decoded leaves.
func parseMIME(t *testing.T, header mail.Header, body io.Reader) (top string, containers []string, leaves []part) {
	t.Helper()
	var walk func(contentType, encoding, contentID string, r io.Reader)
	walk = func(contentType, encoding, contentID string, r io.Reader) {
		mediaType, params, err := mime.ParseMediaType(contentType)
		if err != nil {
			t.Fatalf("parse content type %q: %v", contentType, err)
		}
		if strings.HasPrefix(mediaType, "multipart/") {
			containers = append(containers, mediaType)
			reader := multipart.NewReader(r, params["boundary"])
			for {
				p, err := reader.NextRawPart()
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					t.Fatalf("read part of %s: %v", mediaType, err)
				}
				walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Id"), p)
			}
		}
		switch strings.ToLower(encoding) {
		case "quoted-printable":
			r = quotedprintable.NewReader(r)
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, r)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read %s part: %v", mediaType, err)
		}
		leaves = append(leaves, part{contentType: mediaType, contentID: contentID, body: data})
	}
	top, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("parse top content type: %v", err)
	}
	walk(header.Get("Content-Type"), header.Get("Content-Transfer-Encoding"), "", body)
	return top, containers, leaves
}

func leafOfType(leaves []part, mediaType string) (part, bool) {
	for _, p := range leaves {
		if p.contentType == mediaType {
			return p, true
		}
	}
	return part{}, false
}

// newsletter is a message like the ones campaigns send.
func newsletter(id, to string) *mailer.Message {
	m := &mailer.Message{
		From:      "Regulars Café <club@shop.example>",
		To:        []string{to},
		Subject:   "Ukens tilbud – 20 % på kaffe",
		Text:      "Hello Kari,\nyour card: 1234 5678\n",
		HTML:      `<p>Hello Kari,</p><p>your card: <img src="cid:barcode"></p>`,
		MessageID: id,
	}
	m.SetListUnsubscribe("https://shop.example/unsubscribe?token=abc", "mailto:unsubscribe@shop.example?subject=unsubscribe")
	return m
}

var pngBytes = []byte("\x89PNG\r\n\x1a\nnot-really-a-png")

func newSMTPSender(t *testing.T, server *smtptest.Server, opts ...mailer.Option) *mailer.SMTP {
	t.Helper()
	cfg, err := mailer.ParseSMTPURL(server.URL())
	if err != nil {
		t.Fatalf("parse test server URL: %v", err)
	}
	sender, err := mailer.NewSMTP(cfg, append([]mailer.Option{mailer.WithRetry(4, time.Millisecond), mailer.WithHELO("test.localhost")}, opts...)...)
	if err != nil {
		t.Fatalf("new SMTP sender: %v", err)
	}
	t.Cleanup(func() {
		if err := sender.Close(); err != nil {
			t.Errorf("close sender: %v", err)
		}
	})
	return sender
}

func TestSMTPDeliversAMultipartMessageWithItsHeaders(t *testing.T) {
	tests := []struct {
		name           string
		inline         []mailer.Inline
		wantTop        string
		wantContainers []string
	}{
		{
			name:           "without inline parts the body is multipart/alternative",
			wantTop:        "multipart/alternative",
			wantContainers: []string{"multipart/alternative"},
		},
		{
			name:           "with a barcode the alternative sits in multipart/related beside the image",
			inline:         []mailer.Inline{{ContentID: "barcode", Filename: "card.png", ContentType: "image/png", Data: pngBytes}},
			wantTop:        "multipart/related",
			wantContainers: []string{"multipart/related", "multipart/alternative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := smtptest.New(t)
			sender := newSMTPSender(t, server)
			m := newsletter("run-1.member-7@shop.example", "kari@example.org")
			m.Inline = tt.inline
			if err := sender.Send(context.Background(), m); err != nil {
				t.Fatalf("send: %v", err)
			}
			got := server.Messages()
			if len(got) != 1 {
				t.Fatalf("server received %d messages, want 1", len(got))
			}
			received := got[0]
			if received.From != "club@shop.example" || len(received.To) != 1 || received.To[0] != "kari@example.org" {
				t.Errorf("envelope = %q → %q, want club@shop.example → kari@example.org", received.From, received.To)
			}
			h := received.Header
			wantHeaders := map[string]string{
				"Message-Id":            "<run-1.member-7@shop.example>",
				"List-Unsubscribe":      "<https://shop.example/unsubscribe?token=abc>, <mailto:unsubscribe@shop.example?subject=unsubscribe>",
				"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
				"Mime-Version":          "1.0",
			}
			for name, want := range wantHeaders {
				if got := h.Get(name); got != want {
					t.Errorf("header %s = %q, want %q", name, got, want)
				}
			}
			subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
			if err != nil || subject != m.Subject {
				t.Errorf("subject = %q (%v), want %q", subject, err, m.Subject)
			}
			msg, err := mail.ReadMessage(bytes.NewReader(received.Data))
			if err != nil {
				t.Fatalf("parse received message: %v", err)
			}
			top, containers, leaves := parseMIME(t, msg.Header, msg.Body)
			if top != tt.wantTop || strings.Join(containers, ",") != strings.Join(tt.wantContainers, ",") {
				t.Errorf("structure = %s %v, want %s %v", top, containers, tt.wantTop, tt.wantContainers)
			}
			if text, ok := leafOfType(leaves, "text/plain"); !ok || !strings.Contains(string(text.body), "your card: 1234 5678") {
				t.Errorf("text part = %q (found %v)", text.body, ok)
			}
			if html, ok := leafOfType(leaves, "text/html"); !ok || !strings.Contains(string(html.body), `<img src="cid:barcode">`) {
				t.Errorf("html part = %q (found %v)", html.body, ok)
			}
			if len(tt.inline) > 0 {
				image, ok := leafOfType(leaves, "image/png")
				if !ok || image.contentID != "<barcode>" || !bytes.Equal(image.body, pngBytes) {
					t.Errorf("inline image = %+v (found %v), want content id <barcode> and the PNG bytes", image, ok)
				}
			}
		})
	}
}

func TestSMTPPoolDeliversEveryMessageOnceOverReusedConnections(t *testing.T) {
	const messages, poolSize, callers = 200, 4, 16
	server := smtptest.New(t)
	sender := newSMTPSender(t, server, mailer.WithPoolSize(poolSize))

	jobs := make(chan int)
	errs := make(chan error, messages)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for i := range jobs {
				id := fmt.Sprintf("m%03d@shop.example", i)
				if err := sender.Send(context.Background(), newsletter(id, fmt.Sprintf("member%03d@example.org", i))); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range messages {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("send: %v", err)
	}

	checkEachArrivedOnce(t, server, messages)
	if got := server.Connections(); got > poolSize {
		t.Errorf("server saw %d connections for %d messages, want at most %d", got, messages, poolSize)
	}
	t.Logf("%d messages over %d connections (%d dials)", messages, server.Connections(), sender.Dials())
}

func TestSMTPRetriesTemporaryFailuresOnly(t *testing.T) {
	tests := []struct {
		name          string
		inject        func(*smtptest.Server)
		attempts      int
		wantDelivered bool
		wantPermanent bool
		wantCode      int
		wantAttempts  int
	}{
		{
			name:          "a 451 at RCPT is retried and delivered",
			inject:        func(s *smtptest.Server) { s.FailRcpt(2, 451) },
			attempts:      4,
			wantDelivered: true,
		},
		{
			name:          "a 451 after DATA is retried and delivered",
			inject:        func(s *smtptest.Server) { s.FailData(1, 451) },
			attempts:      4,
			wantDelivered: true,
		},
		{
			name:          "a 550 at RCPT is not retried and is permanent",
			inject:        func(s *smtptest.Server) { s.FailRcpt(1, 550) },
			attempts:      4,
			wantPermanent: true,
			wantCode:      550,
			wantAttempts:  1,
		},
		{
			name:          "a 554 after DATA is not retried and is permanent",
			inject:        func(s *smtptest.Server) { s.FailData(1, 554) },
			attempts:      4,
			wantPermanent: true,
			wantCode:      554,
			wantAttempts:  1,
		},
		{
			name:         "a 451 that outlasts the attempts is reported as temporary",
			inject:       func(s *smtptest.Server) { s.FailRcpt(10, 451) },
			attempts:     3,
			wantCode:     451,
			wantAttempts: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := smtptest.New(t)
			sender := newSMTPSender(t, server, mailer.WithRetry(tt.attempts, time.Millisecond))
			tt.inject(server)
			err := sender.Send(context.Background(), newsletter("retry@shop.example", "kari@example.org"))
			delivered := server.Count()
			if tt.wantDelivered {
				if err != nil || delivered != 1 {
					t.Fatalf("err = %v, delivered %d; want delivered once", err, delivered)
				}
				return
			}
			var sendErr *mailer.SendError
			if !errors.As(err, &sendErr) {
				t.Fatalf("err = %v, want a *mailer.SendError", err)
			}
			if delivered != 0 {
				t.Errorf("delivered %d, want 0", delivered)
			}
			if mailer.IsPermanent(err) != tt.wantPermanent || mailer.IsTemporary(err) == tt.wantPermanent {
				t.Errorf("permanent = %v, temporary = %v; want permanent %v", mailer.IsPermanent(err), mailer.IsTemporary(err), tt.wantPermanent)
			}
			if sendErr.Code != tt.wantCode || sendErr.Attempts != tt.wantAttempts {
				t.Errorf("code %d after %d attempts, want %d after %d (%v)", sendErr.Code, sendErr.Attempts, tt.wantCode, tt.wantAttempts, err)
			}
		})
	}
}

func TestSMTPRedialsWhenTheServerDropsTheConnection(t *testing.T) {
	server := smtptest.New(t)
	sender := newSMTPSender(t, server, mailer.WithPoolSize(1))
	ctx := context.Background()
	if err := sender.Send(ctx, newsletter("before@shop.example", "kari@example.org")); err != nil {
		t.Fatalf("first send: %v", err)
	}
	server.DropConnections()
	if err := sender.Send(ctx, newsletter("after@shop.example", "kari@example.org")); err != nil {
		t.Fatalf("send after the connection dropped: %v", err)
	}
	if got := server.Count(); got != 2 {
		t.Errorf("delivered %d, want 2", got)
	}
	if got := server.Connections(); got != 2 {
		t.Errorf("connections = %d, want 2 (one redial)", got)
	}
}

// checkEachArrivedOnce checks that the server got the messages m000@shop.example … of
// numbers 0 to n-1, each exactly once, and nothing else.
func checkEachArrivedOnce(t *testing.T, server *smtptest.Server, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range server.Messages() {
		seen[m.Header.Get("Message-Id")]++
	}
	for i := range n {
		id := fmt.Sprintf("<m%03d@shop.example>", i)
		if seen[id] != 1 {
			t.Errorf("message %s arrived %d times, want once", id, seen[id])
		}
	}
	if len(seen) != n || server.Count() != n {
		t.Errorf("server saw %d messages, %d distinct, want %d", server.Count(), len(seen), n)
	}
}

// The sender checks no pooled connection before a mail (no NOOP): a relay that closed it
// between mails is noticed by the next mail's MAIL, and that mail goes again on a new
// connection. With a single attempt allowed, any failure that was not absorbed would show.
func TestSMTPRedialsWhenTheRelayClosesBetweenMails(t *testing.T) {
	tests := []struct {
		name     string
		code     int // the reply the relay sends before closing; 0 for none
		pool     int
		mails    int
		wantConn int // 0: not checked (concurrent sends share connections unevenly)
	}{
		{name: "closed without a word", code: 0, pool: 1, mails: 10, wantConn: 4},
		{name: "closed with 421 (idle timeout)", code: 421, pool: 1, mails: 10, wantConn: 4},
		{name: "closed with 421, four connections in parallel", code: 421, pool: 4, mails: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := smtptest.New(t)
			server.CloseEvery(3, tt.code)
			sender := newSMTPSender(t, server, mailer.WithPoolSize(tt.pool), mailer.WithRetry(1, time.Millisecond))
			var wg sync.WaitGroup
			errs := make(chan error, tt.mails)
			for i := range tt.mails {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := sender.Send(context.Background(), newsletter(fmt.Sprintf("m%03d@shop.example", i), "kari@example.org")); err != nil {
						errs <- err
					}
				}()
				if tt.pool == 1 {
					wg.Wait() // one after the other, so every third mail finds its connection closed
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("send: %v", err)
			}
			checkEachArrivedOnce(t, server, tt.mails)
			if tt.wantConn != 0 && (server.Connections() != tt.wantConn || sender.Dials() != int64(tt.wantConn)) {
				t.Errorf("connections = %d, dials = %d; want %d (a redial every third mail)", server.Connections(), sender.Dials(), tt.wantConn)
			}
		})
	}
}

// A mail whose DATA the relay took without the client hearing so is never sent again by the
// redial of a stale connection: only Send's retry (here one attempt) may decide that.
func TestSMTPDoesNotResendAMailWhoseDataReplyWasLost(t *testing.T) {
	server := smtptest.New(t)
	sender := newSMTPSender(t, server, mailer.WithPoolSize(1), mailer.WithRetry(1, time.Millisecond))
	ctx := context.Background()
	if err := sender.Send(ctx, newsletter("first@shop.example", "kari@example.org")); err != nil {
		t.Fatalf("first send: %v", err)
	}
	server.DropDataReplies(1)
	err := sender.Send(ctx, newsletter("lost@shop.example", "kari@example.org"))
	if !mailer.IsTemporary(err) {
		t.Fatalf("err = %v, want a temporary failure", err)
	}
	if got := server.Count(); got != 2 {
		t.Fatalf("delivered %d, want 2 (the lost reply's mail once)", got)
	}
	if err := sender.Send(ctx, newsletter("after@shop.example", "kari@example.org")); err != nil {
		t.Fatalf("send after the lost reply: %v", err)
	}
	if got, conns := server.Count(), server.Connections(); got != 3 || conns != 2 {
		t.Errorf("delivered %d over %d connections, want 3 over 2", got, conns)
	}
}

func TestSMTPStopsRetryingWhenTheContextEnds(t *testing.T) {
	server := smtptest.New(t)
	// A backoff of an hour: the send can only return early by honouring the context.
	sender := newSMTPSender(t, server, mailer.WithRetry(5, time.Hour))
	server.FailRcpt(5, 451)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := sender.Send(ctx, newsletter("ctx@shop.example", "kari@example.org"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestSMTPAuthenticatesWithTheURLCredentials(t *testing.T) {
	tests := []struct {
		name          string
		password      string
		wantDelivered bool
	}{
		{name: "the right password is accepted", password: "p@ss:word/1", wantDelivered: true},
		{name: "a wrong password is a permanent failure", password: "wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := smtptest.New(t, smtptest.WithAuth("shop", "p@ss:word/1"))
			cfg, err := mailer.ParseSMTPURL(server.URL())
			if err != nil {
				t.Fatalf("parse %s: %v", server.URL(), err)
			}
			cfg.Password = tt.password
			sender, err := mailer.NewSMTP(cfg, mailer.WithRetry(2, time.Millisecond))
			if err != nil {
				t.Fatalf("new sender: %v", err)
			}
			defer sender.Close()
			err = sender.Send(context.Background(), newsletter("auth@shop.example", "kari@example.org"))
			if !tt.wantDelivered {
				if !mailer.IsPermanent(err) {
					t.Fatalf("err = %v, want a permanent failure", err)
				}
				if server.Count() != 0 {
					t.Errorf("delivered %d, want 0", server.Count())
				}
				return
			}
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			if got := server.Messages(); len(got) != 1 || got[0].User != "shop" {
				t.Errorf("messages = %+v, want one sent by user shop", got)
			}
		})
	}
}

func TestSMTPWithoutCredentialsIsRefusedByAnAuthenticatingServer(t *testing.T) {
	server := smtptest.New(t, smtptest.WithAuth("shop", "secret"))
	sender, err := mailer.New(strings.Replace(server.URL(), "shop:secret@", "", 1), "")
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	defer sender.Close()
	if err := sender.Send(context.Background(), newsletter("noauth@shop.example", "kari@example.org")); !mailer.IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent failure", err)
	}
}

func TestSendRefusesInvalidMessagesAsPermanent(t *testing.T) {
	server := smtptest.New(t)
	sender := newSMTPSender(t, server)
	tests := []struct {
		name   string
		modify func(*mailer.Message)
	}{
		{name: "a message without recipients", modify: func(m *mailer.Message) { m.To = nil }},
		{name: "a message without a body", modify: func(m *mailer.Message) { m.Text, m.HTML = "", "" }},
		{name: "a malformed recipient", modify: func(m *mailer.Message) { m.To = []string{"not an address"} }},
		{name: "a header with a line break", modify: func(m *mailer.Message) {
			m.Headers = append(m.Headers, mailer.Header{Name: "X-Campaign", Value: "1\r\nBcc: victim@example.org"})
		}},
		{name: "a header that belongs to a field", modify: func(m *mailer.Message) {
			m.Headers = append(m.Headers, mailer.Header{Name: "Subject", Value: "other"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newsletter("invalid@shop.example", "kari@example.org")
			tt.modify(m)
			if err := sender.Send(context.Background(), m); !mailer.IsPermanent(err) {
				t.Fatalf("err = %v, want a permanent failure", err)
			}
		})
	}
	if server.Count() != 0 {
		t.Errorf("delivered %d, want 0", server.Count())
	}
}

func TestNewPicksSMTPWhenAURLIsSetAndTheOutboxOtherwise(t *testing.T) {
	dir := t.TempDir()
	outbox, err := mailer.New("", dir)
	if err != nil {
		t.Fatalf("new outbox: %v", err)
	}
	if _, ok := outbox.(*mailer.Outbox); !ok {
		t.Errorf("without a URL got %T, want *mailer.Outbox", outbox)
	}
	relay, err := mailer.New("smtp://mail.example:2525?tls=none", dir)
	if err != nil {
		t.Fatalf("new SMTP: %v", err)
	}
	if _, ok := relay.(*mailer.SMTP); !ok {
		t.Errorf("with a URL got %T, want *mailer.SMTP", relay)
	}
	if _, err := mailer.New("ftp://mail.example", dir); err == nil {
		t.Errorf("a bad URL was accepted")
	}
}

func TestSMTPStartTLS(t *testing.T) {
	tests := []struct {
		name          string
		trustServer   bool
		wantDelivered bool
	}{
		{name: "a trusted certificate encrypts the session before AUTH", trustServer: true, wantDelivered: true},
		{name: "an untrusted certificate is a permanent failure", trustServer: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := smtptest.New(t, smtptest.WithStartTLS(), smtptest.WithAuth("shop", "secret"))
			var opts []mailer.Option
			if tt.trustServer {
				opts = append(opts, mailer.WithTLSConfig(&tls.Config{RootCAs: server.CertPool(), MinVersion: tls.VersionTLS12}))
			}
			sender, err := mailer.New(server.URL(), "", append(opts, mailer.WithRetry(3, time.Millisecond))...)
			if err != nil {
				t.Fatalf("new sender for %s: %v", server.URL(), err)
			}
			defer sender.Close()
			err = sender.Send(context.Background(), newsletter("tls@shop.example", "kari@example.org"))
			if !tt.wantDelivered {
				if !mailer.IsPermanent(err) {
					t.Fatalf("err = %v, want a permanent failure", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			if got := server.Messages(); len(got) != 1 || !got[0].TLS || got[0].User != "shop" {
				t.Errorf("messages = %+v, want one over TLS from user shop", got)
			}
		})
	}
}
