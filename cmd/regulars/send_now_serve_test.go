package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// TestServeSendsACampaignNow: POST /api/v1/campaigns/{id}/send makes serve's dispatcher and
// sender mail the segment within seconds, once each, and the campaign ends sent; sending it
// again is 409.
func TestServeSendsACampaignNow(t *testing.T) {
	t.Parallel()
	smtp := smtptest.New(t)
	dbURL := dbtest.URL(t)
	env := []string{"REGULARS_DATABASE_URL=" + dbURL, "REGULARS_DATA_DIR=" + t.TempDir(),
		"REGULARS_SMTP_URL=" + smtp.URL(), "REGULARS_BASE_URL=https://club.example/",
		"REGULARS_MAIL_FROM=Regulars club <club@shop.example>"}
	srv := startServe(t, env)
	marketer := newAPIClient(srv.base, createKey(t, env, "--role", "marketer", "--name", "campaigns"))

	db, err := models.Open(context.Background(), dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Pool.Exec(context.Background(), `
		INSERT INTO members (card, email, name, status, marketing_consent, source)
		SELECT lpad(g::text, 13, '0'), 'now' || g || '@example.com', 'Member ' || g, 'active', 'confirmed', 'till'
		FROM generate_series(1, 10) g`); err != nil {
		t.Fatal(err)
	}
	var seg, c struct{ ID int64 }
	if err := json.Unmarshal(marketer.mustDo(t, http.MethodPost, "/api/v1/segments", map[string]any{
		"name": "example.com", "rules": map[string]any{"field": "email_domain", "op": "eq", "value": "example.com"},
	}, http.StatusCreated), &seg); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(marketer.mustDo(t, http.MethodPost, "/api/v1/campaigns", map[string]any{
		"name": "Now", "subject": "Doors open", "text": "We are open late tonight.", "segment_id": seg.ID,
	}, http.StatusCreated), &c); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	var out struct{ Status string }
	if err := json.Unmarshal(marketer.mustDo(t, http.MethodPost, fmt.Sprintf("/api/v1/campaigns/%d/send", c.ID), nil, http.StatusOK), &out); err != nil {
		t.Fatal(err)
	}
	if out.Status != "scheduled" {
		t.Errorf("send now answered a %s campaign, want scheduled (for now)", out.Status)
	}
	for smtp.Count() < 10 {
		if time.Since(sent) > 10*time.Second {
			t.Fatalf("%d of 10 mails within 10 s of send now", smtp.Count())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("10 mails %v after send now", time.Since(sent).Round(time.Millisecond))
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := json.Unmarshal(marketer.mustDo(t, http.MethodGet, fmt.Sprintf("/api/v1/campaigns/%d", c.ID), nil, http.StatusOK), &out); err != nil {
			t.Fatal(err)
		}
		if out.Status == "sent" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign still %s after 30 s", out.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	marketer.mustDo(t, http.MethodPost, fmt.Sprintf("/api/v1/campaigns/%d/send", c.ID), nil, http.StatusConflict)
	got := map[string]int{}
	for _, m := range smtp.Messages() {
		got[m.To[0]]++
	}
	for i := 1; i <= 10; i++ {
		if addr := fmt.Sprintf("now%d@example.com", i); got[addr] != 1 {
			t.Errorf("%s got %d mails, want 1", addr, got[addr])
		}
	}
}
