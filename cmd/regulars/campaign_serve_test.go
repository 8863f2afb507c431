package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// TestServeSendsScheduledCampaigns checks the wiring of the dispatcher and sender in serve: a
// campaign scheduled through the API goes out within 10 seconds of its time (the contract's
// bound) to each mailable member of its segment once, at REGULARS_SEND_RATE.
func TestServeSendsScheduledCampaigns(t *testing.T) {
	t.Parallel()
	smtp := smtptest.New(t)
	dbURL := dbtest.URL(t)
	env := []string{"REGULARS_DATABASE_URL=" + dbURL, "REGULARS_DATA_DIR=" + t.TempDir(),
		"REGULARS_SMTP_URL=" + smtp.URL(), "REGULARS_BASE_URL=https://club.example/",
		"REGULARS_MAIL_FROM=Regulars club <club@shop.example>",
		"REGULARS_SEND_CONCURRENCY=2", "REGULARS_SEND_RATE=100"}
	srv := startServe(t, env)
	marketer := newAPIClient(srv.base, createKey(t, env, "--role", "marketer", "--name", "campaigns"))

	db, err := models.Open(context.Background(), dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Pool.Exec(context.Background(), `
		INSERT INTO members (card, email, name, status, marketing_consent, source)
		SELECT lpad(g::text, 13, '0'), 'm' || g || '@example.com', 'Member ' || g, 'active',
			CASE WHEN g % 5 = 0 THEN 'withdrawn' ELSE 'confirmed' END, 'till'
		FROM generate_series(1, 50) g`); err != nil {
		t.Fatal(err)
	}

	var seg struct{ ID int64 }
	if err := json.Unmarshal(marketer.mustDo(t, http.MethodPost, "/api/v1/segments", map[string]any{
		"name": "example.com", "rules": map[string]any{"field": "email_domain", "op": "eq", "value": "example.com"},
	}, http.StatusCreated), &seg); err != nil {
		t.Fatal(err)
	}
	var c struct{ ID int64 }
	if err := json.Unmarshal(marketer.mustDo(t, http.MethodPost, "/api/v1/campaigns", map[string]any{
		"name": "Wiring", "subject": "Hello {{.Member.FirstName}}", "text": "New records are in.", "segment_id": seg.ID,
	}, http.StatusCreated), &c); err != nil {
		t.Fatal(err)
	}
	sendAt := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	marketer.mustDo(t, http.MethodPost, fmt.Sprintf("/api/v1/campaigns/%d/schedule", c.ID),
		map[string]any{"send_at": sendAt.Format(time.RFC3339)}, http.StatusOK)

	for smtp.Count() == 0 {
		if time.Now().After(sendAt.Add(10 * time.Second)) {
			t.Fatalf("no campaign mail within 10 s of send_at")
		}
		time.Sleep(20 * time.Millisecond)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status struct{ Status string }
		if err := json.Unmarshal(marketer.mustDo(t, http.MethodGet, fmt.Sprintf("/api/v1/campaigns/%d", c.ID), nil, http.StatusOK), &status); err != nil {
			t.Fatal(err)
		}
		if status.Status == "sent" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign still %s after 30 s", status.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := map[string]int{}
	for _, m := range smtp.Messages() {
		got[m.To[0]]++
	}
	for i := 1; i <= 50; i++ {
		addr, want := fmt.Sprintf("m%d@example.com", i), 1
		if i%5 == 0 {
			want = 0
		}
		if got[addr] != want {
			t.Errorf("%s got %d mails, want %d", addr, got[addr], want)
		}
	}

	srv.signal(syscall.SIGTERM)
	if code := srv.exitCode(); code != 0 {
		t.Errorf("serve exit code %d after SIGTERM, want 0", code)
	}
}
