package mailer_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/mailer"
)

// readOutbox returns the outbox's .eml files in name order, failing on anything else in it.
func readOutbox(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".eml") || strings.HasPrefix(e.Name(), ".") {
			t.Errorf("unexpected file %s left in the outbox", e.Name())
			continue
		}
		names = append(names, e.Name())
	}
	return names // os.ReadDir sorts by name
}

func TestOutboxWritesOneParseableEMLPerMessageInSendingOrder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox") // created by NewOutbox
	fixed := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	outbox, err := mailer.NewOutbox(dir, mailer.WithClock(func() time.Time { return fixed }))
	if err != nil {
		t.Fatalf("new outbox: %v", err)
	}
	const count = 12 // more than 9, so a name order that is not numeric would show
	for i := range count {
		m := newsletter(fmt.Sprintf("m%02d@shop.example", i), fmt.Sprintf("member%02d@example.org", i))
		if i%2 == 1 {
			m.Inline = []mailer.Inline{{ContentID: "barcode", Filename: "card.png", ContentType: "image/png", Data: pngBytes}}
		}
		if err := outbox.Send(context.Background(), m); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}

	names := readOutbox(t, dir)
	if len(names) != count {
		t.Fatalf("outbox holds %d files, want %d", len(names), count)
	}
	for i, name := range names {
		t.Run(fmt.Sprintf("file %d parses with its headers and both parts", i), func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			msg, err := mail.ReadMessage(f)
			if err != nil {
				t.Fatalf("parse %s: %v", name, err)
			}
			h := msg.Header
			wantID := fmt.Sprintf("<m%02d@shop.example>", i)
			if got := h.Get("Message-Id"); got != wantID {
				t.Errorf("Message-ID = %q, want %q (files must sort in sending order)", got, wantID)
			}
			if got := h.Get("To"); got != fmt.Sprintf("<member%02d@example.org>", i) {
				t.Errorf("To = %q", got)
			}
			if from, err := h.AddressList("From"); err != nil || from[0].Name != "Regulars Café" || from[0].Address != "club@shop.example" {
				t.Errorf("From = %v (%v)", from, err)
			}
			if date, err := h.Date(); err != nil || !date.Equal(fixed) {
				t.Errorf("Date = %v (%v), want %v", date, err, fixed)
			}
			if subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); err != nil || subject != "Ukens tilbud – 20 % på kaffe" {
				t.Errorf("Subject = %q (%v)", subject, err)
			}
			if got := h.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
				t.Errorf("List-Unsubscribe-Post = %q", got)
			}
			if got := h.Get("List-Unsubscribe"); !strings.Contains(got, "<https://shop.example/unsubscribe?token=abc>") {
				t.Errorf("List-Unsubscribe = %q", got)
			}
			_, containers, leaves := parseMIME(t, h, msg.Body)
			if !strings.Contains(strings.Join(containers, ","), "multipart/alternative") {
				t.Errorf("containers = %v, want a multipart/alternative", containers)
			}
			text, hasText := leafOfType(leaves, "text/plain")
			html, hasHTML := leafOfType(leaves, "text/html")
			if !hasText || !hasHTML || !strings.Contains(string(text.body), "Hello Kari") || !strings.Contains(string(html.body), "<p>Hello Kari,</p>") {
				t.Errorf("text %q, html %q; want both alternatives", text.body, html.body)
			}
			if _, hasImage := leafOfType(leaves, "image/png"); hasImage != (i%2 == 1) {
				t.Errorf("inline image present = %v, want %v", hasImage, i%2 == 1)
			}
		})
	}
}

func TestOutboxRefusesAnInvalidMessageWithoutWritingAFile(t *testing.T) {
	dir := t.TempDir()
	outbox, err := mailer.NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := newsletter("bad@shop.example", "kari@example.org")
	m.From = ""
	if err := outbox.Send(context.Background(), m); !mailer.IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent failure", err)
	}
	if names := readOutbox(t, dir); len(names) != 0 {
		t.Errorf("outbox holds %v, want nothing", names)
	}
}

func TestDKIMSignsEveryMessage(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := mailer.ParseDKIMKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatalf("parse key: %v", err)
	}
	dir := t.TempDir()
	outbox, err := mailer.NewOutbox(dir, mailer.WithDKIM("shop.example", "regulars", signer))
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Send(context.Background(), newsletter("dkim@shop.example", "kari@example.org")); err != nil {
		t.Fatalf("send: %v", err)
	}
	names := readOutbox(t, dir)
	if len(names) != 1 {
		t.Fatalf("outbox holds %d files, want 1", len(names))
	}
	f, err := os.Open(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	msg, err := mail.ReadMessage(f)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	signature := strings.Join(strings.Fields(msg.Header.Get("Dkim-Signature")), "")
	for _, tag := range []string{"a=ed25519-sha256", "d=shop.example", "s=regulars", "bh="} {
		if !strings.Contains(signature, tag) {
			t.Errorf("DKIM-Signature %q lacks %s", signature, tag)
		}
	}
	if _, err := mailer.ParseDKIMKey([]byte("not a key")); err == nil {
		t.Errorf("a non-PEM key was accepted")
	}
}
