package main

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/providers/providertest"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// TestServeTakesSendGridComplaints: serve with REGULARS_SENDGRID_WEBHOOK_KEY applies a signed
// spam report (the member's consent withdrawn with sendgrid as the source) and refuses an
// unsigned one; the other providers, unset, answer 404.
func TestServeTakesSendGridComplaints(t *testing.T) {
	t.Parallel()
	sg, err := providertest.NewSendGrid()
	if err != nil {
		t.Fatal(err)
	}
	dbURL := dbtest.URL(t)
	env := []string{"REGULARS_DATABASE_URL=" + dbURL, "REGULARS_DATA_DIR=" + t.TempDir(),
		"REGULARS_SENDGRID_WEBHOOK_KEY=" + sg.PublicKey}
	srv := startServe(t, env)
	db, err := models.Open(context.Background(), dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO members (card, email, name, status, marketing_consent, source)
		VALUES ('7000000000017', 'kari@example.com', 'Kari', 'active', 'confirmed', 'till')`); err != nil {
		t.Fatal(err)
	}
	body := []byte(`[{"email":"kari@example.com","event":"spamreport","sg_event_id":"sg-serve-1"}]`)
	post := func(path string, sign bool) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if sign {
			s, ts := sg.Sign(body, time.Now())
			req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", s)
			req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := post("/api/v1/webhooks/sendgrid", false); got != 401 {
		t.Errorf("unsigned: %d", got)
	}
	if got := post("/api/v1/webhooks/mailgun", false); got != 404 {
		t.Errorf("unset Mailgun: %d", got)
	}
	if got := post("/api/v1/webhooks/sendgrid", true); got != 200 {
		t.Fatalf("signed: %d", got)
	}
	var consent, source string
	if err := db.Pool.QueryRow(ctx, `SELECT m.marketing_consent, c.source FROM members m
		JOIN consents c ON c.member_id = m.id AND NOT c.granted WHERE m.email = 'kari@example.com'`).Scan(&consent, &source); err != nil {
		t.Fatal(err)
	}
	if consent != "withdrawn" || source != "sendgrid" {
		t.Errorf("consent %s, withdrawal source %s", consent, source)
	}
}
