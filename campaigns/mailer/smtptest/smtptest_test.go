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
