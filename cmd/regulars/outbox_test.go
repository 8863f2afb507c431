package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/mailer"
)

// TestOutboxCommand lists mails that a real Outbox wrote into the data folder.
func TestOutboxCommand(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	outbox := func(args ...string) (string, error) {
		t.Helper()
		getenv := func(k string) string {
			switch k {
			case "REGULARS_DATA_DIR":
				return data
			case "REGULARS_TIMEZONE":
				return "Europe/Oslo"
			}
			return ""
		}
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"outbox"}, args...), getenv, strings.NewReader(""), &stdout, &stderr)
		return stdout.String(), err
	}
	t.Run("without an outbox folder it says where mail would be", func(t *testing.T) {
		if _, err := outbox(); err == nil || !strings.Contains(err.Error(), "no outbox folder at "+filepath.Join(data, "outbox")) {
			t.Errorf("error %v", err)
		}
	})
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	box, err := mailer.NewOutbox(filepath.Join(data, "outbox"), mailer.WithClock(func() time.Time { at = at.Add(time.Minute); return at }))
	if err != nil {
		t.Fatal(err)
	}
	confirm := "http://localhost:8080/confirm?token=2001.tpz1rk.v-nFDLUrpExYynXZlRzOGtF4-a-token-long-enough-to-be-broken-by-quoted-printable"
	for _, to := range []string{"kari@example.org", "ola@example.org"} {
		if err := box.Send(context.Background(), &mailer.Message{From: "club@shop.example", To: []string{to}, Subject: "Bekreft medlemskapet",
			HTML: `<p><a href="` + confirm + `">Bekreft</a></p>`}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("the newest mail comes first with its link decoded", func(t *testing.T) {
		out, err := outbox("-n", "1")
		if err != nil {
			t.Fatal(err)
		}
		want := "2026-12-06 10:02:00 CET  to ola@example.org  \"Bekreft medlemskapet\"\n  " + confirm + "\n"
		if !strings.HasPrefix(out, want) || strings.Contains(out, "kari") || strings.Contains(out, "=3D") {
			t.Errorf("output\n%s\nwant it to start\n%s", out, want)
		}
	})
	t.Run("by default both are listed", func(t *testing.T) {
		out, err := outbox()
		if err != nil || strings.Count(out, confirm) != 2 {
			t.Errorf("%v\n%s", err, out)
		}
	})
	t.Run("-n 0 is refused", func(t *testing.T) {
		if _, err := outbox("-n", "0"); err == nil {
			t.Error("no error")
		}
	})
}
