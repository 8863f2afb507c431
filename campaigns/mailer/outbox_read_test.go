package mailer_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/mailer"
)

// TestReadOutboxListsTheNewestMailsWithDecodedLinks sends mails through a real Outbox, with a
// long link that quoted-printable breaks and whose "=" it writes "=3D", an encoded subject and an
// inline image, and reads them back.
func TestReadOutboxListsTheNewestMailsWithDecodedLinks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	outbox, err := mailer.NewOutbox(dir, mailer.WithClock(func() time.Time { at = at.Add(time.Minute); return at }))
	if err != nil {
		t.Fatal(err)
	}
	confirm := "http://localhost:8080/confirm?token=2001.tpz1rk.v-nFDLUrpExYynXZlRzOGtF4" + strings.Repeat("x", 60)
	for i, m := range []*mailer.Message{
		{From: "club@shop.example", To: []string{"first@example.org"}, Subject: "First", Text: "No links here."},
		{From: "club@shop.example", To: []string{"åse@example.org"}, Subject: "Bekreft medlemskapet i kundeklubben – Kaffebrenneriet Grünerløkka",
			Text:   "Confirm: " + confirm + "\n",
			HTML:   `<p><a href="` + confirm + `&amp;lang=nb">Confirm</a> <a href="https://shop.example/preferences?token=a=b">Preferences</a> <img src="cid:barcode"></p>`,
			Inline: []mailer.Inline{{ContentID: "barcode", Filename: "card.png", ContentType: "image/png", Data: pngBytes}}},
	} {
		if err := outbox.Send(context.Background(), m); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}

	t.Run("the newest mail comes first with its recipient, subject and decoded links", func(t *testing.T) {
		mails, err := mailer.ReadOutbox(dir, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(mails) != 2 {
			t.Fatalf("%d mails, want 2", len(mails))
		}
		m := mails[0]
		if m.To != "åse@example.org" || m.Subject != "Bekreft medlemskapet i kundeklubben – Kaffebrenneriet Grünerløkka" || !m.Date.Equal(at.Truncate(time.Second)) {
			t.Errorf("to %q, subject %q, date %v", m.To, m.Subject, m.Date)
		}
		want := []string{confirm, confirm + "&lang=nb", "https://shop.example/preferences?token=a=b"}
		if strings.Join(m.Links, "\n") != strings.Join(want, "\n") {
			t.Errorf("links\n%s\nwant\n%s", strings.Join(m.Links, "\n"), strings.Join(want, "\n"))
		}
		for _, l := range m.Links {
			if strings.Contains(l, "=3D") {
				t.Errorf("link %s is still quoted-printable", l)
			}
		}
		if mails[1].Subject != "First" || len(mails[1].Links) != 0 {
			t.Errorf("older mail %+v", mails[1])
		}
	})
	t.Run("n bounds the list", func(t *testing.T) {
		mails, err := mailer.ReadOutbox(dir, 1)
		if err != nil || len(mails) != 1 || mails[0].Subject == "First" {
			t.Fatalf("%v %+v", err, mails)
		}
	})
	t.Run("a missing folder is an error naming it", func(t *testing.T) {
		if _, err := mailer.ReadOutbox(filepath.Join(dir, "nope"), 10); err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("error %v", err)
		}
	})
}
