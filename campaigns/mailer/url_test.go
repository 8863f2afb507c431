package mailer_test

import (
	"strings"
	"testing"

	"github.com/regulars/regulars/campaigns/mailer"
)

func TestParseSMTPURL(t *testing.T) {
	valid := []struct {
		name string
		raw  string
		want mailer.SMTPConfig
	}{
		{
			name: "the contract's example parses with its credentials",
			raw:  "smtp://user:pass@mail.example:587?tls=starttls",
			want: mailer.SMTPConfig{Host: "mail.example", Port: 587, Username: "user", Password: "pass", TLS: mailer.TLSStartTLS},
		},
		{
			name: "tls defaults to starttls on port 587",
			raw:  "smtp://mail.example",
			want: mailer.SMTPConfig{Host: "mail.example", Port: 587, TLS: mailer.TLSStartTLS},
		},
		{
			name: "tls=none defaults to port 25",
			raw:  "smtp://localhost?tls=none",
			want: mailer.SMTPConfig{Host: "localhost", Port: 25, TLS: mailer.TLSNone},
		},
		{
			name: "tls=tls defaults to port 465",
			raw:  "smtp://mail.example?tls=TLS",
			want: mailer.SMTPConfig{Host: "mail.example", Port: 465, TLS: mailer.TLSImplicit},
		},
		{
			name: "smtps means implicit TLS",
			raw:  "smtps://mail.example:4650",
			want: mailer.SMTPConfig{Host: "mail.example", Port: 4650, TLS: mailer.TLSImplicit},
		},
		{
			name: "percent-encoded credentials are decoded",
			raw:  "smtp://apikey%40shop:p%40ss%3Aword@[::1]:2525/?tls=none",
			want: mailer.SMTPConfig{Host: "::1", Port: 2525, Username: "apikey@shop", Password: "p@ss:word", TLS: mailer.TLSNone},
		},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mailer.ParseSMTPURL(tt.raw)
			if err != nil {
				t.Fatalf("ParseSMTPURL(%q): %v", tt.raw, err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}

	invalid := []struct {
		name    string
		raw     string
		wantErr string
	}{
		{name: "another scheme is refused", raw: "http://mail.example", wantErr: `scheme "http" is not supported`},
		{name: "a missing scheme is refused", raw: "mail.example:587", wantErr: "scheme"},
		{name: "a missing host is refused", raw: "smtp://:587?tls=none", wantErr: "no host"},
		{name: "an unknown tls mode is refused", raw: "smtp://mail.example?tls=ssl", wantErr: "not one of none, starttls, tls"},
		{name: "an unknown parameter is refused", raw: "smtp://mail.example?pool=4", wantErr: `parameter "pool" is not supported`},
		{name: "a port out of range is refused", raw: "smtp://mail.example:70000", wantErr: "port"},
		{name: "a path is refused", raw: "smtp://mail.example/inbox", wantErr: "path"},
		{name: "a user without a password is refused", raw: "smtp://user@mail.example", wantErr: "both a user and a password"},
		{name: "smtps with tls=none is contradictory", raw: "smtps://mail.example?tls=none", wantErr: "contradicts"},
		{name: "a malformed URL is refused without echoing the password", raw: "smtp://user:sec ret@mail.exa mple", wantErr: "not a valid URL"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mailer.ParseSMTPURL(tt.raw)
			if err == nil {
				t.Fatalf("ParseSMTPURL(%q) succeeded, want an error", tt.raw)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "sec ret") {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}

func TestSMTPConfigStringMasksThePassword(t *testing.T) {
	cfg, err := mailer.ParseSMTPURL("smtp://user:topsecret@mail.example:587?tls=starttls")
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.String(); strings.Contains(s, "topsecret") || !strings.Contains(s, "mail.example:587") {
		t.Errorf("String() = %q, want the host without the password", s)
	}
}
