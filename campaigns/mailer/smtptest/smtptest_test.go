package smtptest_test

import (
	"errors"
	"net/smtp"
	"net/textproto"
	"testing"

	"github.com/regulars/regulars/campaigns/mailer/smtptest"
)

const body = "From: a@shop.example\r\nTo: b@example.org\r\nSubject: hi\r\nMessage-ID: <1@shop.example>\r\n\r\nhello\r\n"

func TestServerRecordsAndFailsOnRequest(t *testing.T) {
	tests := []struct {
		name      string
		options   []smtptest.Option
		prepare   func(*smtptest.Server)
		auth      smtp.Auth
		wantCode  int
		wantKept  bool
		wantCount int
	}{
		{name: "a message is recorded with its envelope, data and headers", wantKept: true, wantCount: 1},
		{name: "a discarding server keeps the headers but not the data", options: []smtptest.Option{smtptest.WithDiscard()}, wantCount: 1},
		{name: "an injected RCPT failure returns its code", prepare: func(s *smtptest.Server) { s.FailRcpt(1, 451) }, wantCode: 451},
		{name: "an injected DATA failure returns its code", prepare: func(s *smtptest.Server) { s.FailData(1, 554) }, wantCode: 554},
		{name: "MAIL before AUTH is refused when auth is required", options: []smtptest.Option{smtptest.WithAuth("u", "p")}, wantCode: 502},
		{
			name:    "AUTH PLAIN with the right credentials is accepted",
			options: []smtptest.Option{smtptest.WithAuth("u", "p")},
			auth:    smtp.PlainAuth("", "u", "p", "127.0.0.1"), wantKept: true, wantCount: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := smtptest.New(t, tt.options...)
			if tt.prepare != nil {
				tt.prepare(server)
			}
			err := smtp.SendMail(server.Addr, tt.auth, "a@shop.example", []string{"b@example.org"}, []byte(body))
			var reply *textproto.Error
			switch {
			case tt.wantCode != 0 && (!errors.As(err, &reply) || reply.Code != tt.wantCode):
				t.Fatalf("err = %v, want SMTP %d", err, tt.wantCode)
			case tt.wantCode == 0 && err != nil:
				t.Fatalf("send: %v", err)
			}
			got := server.Messages()
			if len(got) != tt.wantCount {
				t.Fatalf("recorded %d messages, want %d", len(got), tt.wantCount)
			}
			if tt.wantCount == 0 {
				return
			}
			m := got[0]
			if m.From != "a@shop.example" || len(m.To) != 1 || m.To[0] != "b@example.org" || m.Header.Get("Message-Id") != "<1@shop.example>" || m.Conn != 1 {
				t.Errorf("recorded %+v", m)
			}
			if (m.Data != nil) != tt.wantKept || (tt.wantKept && string(m.Data) != body) {
				t.Errorf("data = %q, want kept %v", m.Data, tt.wantKept)
			}
			if server.Connections() != 1 {
				t.Errorf("connections = %d, want 1", server.Connections())
			}
		})
	}
}

// sendOn sends body over an open client and returns the error of the end of DATA.
func sendOn(t *testing.T, c *smtp.Client) error {
	t.Helper()
	if err := c.Mail("a@shop.example"); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	if err := c.Rcpt("b@example.org"); err != nil {
		t.Fatalf("RCPT: %v", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatalf("write data: %v", err)
	}
	return w.Close()
}

func TestServerClosesBetweenMailsOrDropsTheReplyOnRequest(t *testing.T) {
	t.Run("after the n-th mail the next command gets the closing reply", func(t *testing.T) {
		server := smtptest.New(t)
		server.CloseEvery(2, 421)
		c, err := smtp.Dial(server.Addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		for i := range 2 {
			if err := sendOn(t, c); err != nil {
				t.Fatalf("mail %d: %v", i+1, err)
			}
		}
		var reply *textproto.Error
		if err := c.Mail("a@shop.example"); !errors.As(err, &reply) || reply.Code != 421 {
			t.Fatalf("MAIL after the closing = %v, want SMTP 421", err)
		}
		if server.Count() != 2 {
			t.Errorf("recorded %d messages, want 2", server.Count())
		}
	})
	t.Run("a dropped reply leaves the mail recorded and the client without an answer", func(t *testing.T) {
		server := smtptest.New(t)
		server.DropDataReplies(1)
		c, err := smtp.Dial(server.Addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		var reply *textproto.Error
		if err := sendOn(t, c); err == nil || errors.As(err, &reply) {
			t.Fatalf("end of DATA = %v, want a broken connection", err)
		}
		if server.Count() != 1 {
			t.Errorf("recorded %d messages, want 1", server.Count())
		}
	})
}
