package main

import (
	"bytes"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/models/dbtest"
)

// TestServeSendsClubMail checks the wiring: a customer enrolled at the till with consent gets
// the "confirm you want offers" mail through REGULARS_SMTP_URL, with links to REGULARS_BASE_URL,
// and serve still stops cleanly on SIGTERM.
func TestServeSendsClubMail(t *testing.T) {
	t.Parallel()
	smtp := smtptest.New(t)
	env := []string{"REGULARS_DATABASE_URL=" + dbtest.URL(t), "REGULARS_DATA_DIR=" + t.TempDir(),
		"REGULARS_SMTP_URL=" + smtp.URL(), "REGULARS_BASE_URL=https://club.example/",
		"REGULARS_MAIL_FROM=Regulars club <club@shop.example>"}
	srv := startServe(t, env)
	till := setUpStore(t, srv, env)
	till.mustDo(t, http.MethodPost, "/api/v1/members", map[string]any{
		"email": "kari@example.com", "name": "Kari", "marketing_consent": true, "consent_text_version": "v1",
	}, http.StatusCreated)

	deadline := time.After(60 * time.Second)
	for smtp.Count() == 0 {
		select {
		case <-deadline:
			t.Fatal("no club mail was sent within a minute")
		case <-time.After(50 * time.Millisecond):
		}
	}
	m := smtp.Messages()[0]
	if len(m.To) != 1 || m.To[0] != "kari@example.com" {
		t.Errorf("mail went to %v, want kari@example.com", m.To)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	if from := msg.Header.Get("From"); !strings.Contains(from, "club@shop.example") {
		t.Errorf("From = %q, want REGULARS_MAIL_FROM", from)
	}
	if lu := msg.Header.Get("List-Unsubscribe"); !strings.Contains(lu, "<https://club.example/unsubscribe?token=") {
		t.Errorf("List-Unsubscribe = %q, want a link under REGULARS_BASE_URL", lu)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body)) // both text parts are quoted-printable
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`https://club\.example/confirm\?token=\d+\.`).Match(body) {
		t.Errorf("no confirmation link under REGULARS_BASE_URL in:\n%s", body)
	}

	srv.signal(syscall.SIGTERM)
	if code := srv.exitCode(); code != 0 {
		t.Errorf("serve exit code %d after SIGTERM, want 0", code)
	}
}
