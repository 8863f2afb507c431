package handlers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/providers"
	"github.com/regulars/regulars/campaigns/providers/providertest"
	"github.com/regulars/regulars/models"
)

// TestWebhookRole: a webhook key reports bounces in the generic format (once per event id) and
// is refused (403) by every other API route.
func TestWebhookRole(t *testing.T) {
	ts := newTrackingShop(t, false)
	ts.recipient(t, "kari", "sent")
	tok, err := ts.db.CreateAPIKey(context.Background(), models.RoleWebhook, "", "mail provider")
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"email": "kari@example.com", "type": "hard", "event_id": "gen-1"}
	for i := range 2 {
		res := ts.do(t, "POST", "/api/v1/webhooks/bounce", tok, body)
		if res.Status != 200 {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		if got := res.JSON(t); got["suppressed"] != (i == 0) && got["duplicate"] != (i == 1) {
			t.Errorf("delivery %d: %v", i+1, got)
		}
	}
	if n := ts.count(t, `SELECT hard_bounces FROM email_suppressions WHERE email = 'kari@example.com'`); n != 1 {
		t.Errorf("hard bounces %d: a repeated event id was counted again", n)
	}

	param := regexp.MustCompile(`:[a-z]+`)
	checked := 0
	for _, r := range ts.srv.server().echo.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") || strings.HasPrefix(r.Path, "/api/v1/webhooks/") || strings.Contains(r.Path, "*") {
			continue
		}
		req := httptest.NewRequest(r.Method, param.ReplaceAllString(r.Path, "1"), strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		ts.srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("%s %s with a webhook key: %d, want 403", r.Method, r.Path, rec.Code)
		}
		checked++
	}
	if checked < 40 {
		t.Errorf("only %d API routes checked", checked)
	}
}

// providerPost posts body with header to path and checks the exchange against openapi.yaml.
func (ts *trackingShop) providerPost(t *testing.T, path string, body []byte, header http.Header) *response {
	t.Helper()
	mk := func(base string) *http.Request {
		req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		return req
	}
	res, err := ts.ts.Client().Do(mk(ts.ts.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := &response{Status: res.StatusCode, Header: res.Header, Body: got}
	ts.check(t, mk("http://localhost"), out)
	return out
}

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

// TestProviderWebhooks: each provider's endpoint is 404 until configured, then applies a
// genuine request once (a repeat is a duplicate), and refuses a forged or replayed one with
// 401, changing nothing.
func TestProviderWebhooks(t *testing.T) {
	ts := newTrackingShop(t, false)
	kari := ts.recipient(t, "kari", "sent")
	ts.recipient(t, "ola", "sent")
	per := ts.recipient(t, "per", "sent")
	ts.recipient(t, "lise", "sent")
	ts.recipient(t, "victim", "sent")
	now := time.Now()

	for _, p := range []string{"ses", "sendgrid", "mailgun", "postmark"} {
		res := ts.providerPost(t, "/api/v1/webhooks/"+p, []byte(`{}`), jsonHeader())
		if res.Status != 404 || !strings.Contains(string(res.Body), "REGULARS_") {
			t.Errorf("%s unconfigured: %d %s", p, res.Status, res.Body)
		}
	}

	sns, err := providertest.NewSNS(now)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := providertest.NewSendGrid()
	if err != nil {
		t.Fatal(err)
	}
	mg := providertest.Mailgun{Key: "key-mailgun-test"}
	ts.srv.reconfigure(t, func(c *Config) {
		c.Webhooks = providers.Settings{SESTopicARNs: []string{providertest.TopicARN}, SNSFetch: sns.Fetch,
			SendGridKey: sg.PublicKey, MailgunKey: mg.Key, PostmarkAuth: "postmark:correct-horse-battery"}
	})

	want := func(what string, res *response, status int, field string, value any) {
		t.Helper()
		if res.Status != status {
			t.Fatalf("%s: %d %s", what, res.Status, res.Body)
		}
		if field != "" {
			if got := res.JSON(t)[field]; fmt.Sprint(got) != fmt.Sprint(value) {
				t.Errorf("%s: %s = %v, want %v (%s)", what, field, got, value, res.Body)
			}
		}
	}
	snsHeader := http.Header{"Content-Type": {"text/plain; charset=UTF-8"}, "X-Amz-Sns-Message-Type": {"Notification"}}

	// SES through SNS.
	sub := "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=tok-1"
	want("SNS subscription", ts.providerPost(t, "/api/v1/webhooks/ses", sns.SubscriptionConfirmation(sub, now), snsHeader),
		200, "subscription_confirmed", true)
	if f := sns.Fetched(); f[len(f)-1] != sub {
		t.Errorf("the subscribe URL was not visited: %v", f)
	}
	bounce := sns.Notification("sns-1", providertest.SESBounce("kari@example.com", "Permanent",
		campaigns.MessageID(ts.runID, kari, "club.example")), now, "2")
	want("SES bounce", ts.providerPost(t, "/api/v1/webhooks/ses", bounce, snsHeader), 200, "applied", 1)
	want("SES bounce again", ts.providerPost(t, "/api/v1/webhooks/ses", bounce, snsHeader), 200, "duplicates", 1)
	forged := bytes.Replace(sns.Notification("sns-2", providertest.SESComplaint("ola@example.com", ""), now, "2"),
		[]byte("ola@example.com"), []byte("victim@example.com"), 1)
	want("SES forged", ts.providerPost(t, "/api/v1/webhooks/ses", forged, snsHeader), 401, "", nil)
	old := sns.Notification("sns-3", providertest.SESComplaint("victim@example.com", ""), now.Add(-2*time.Hour), "1")
	want("SES replayed", ts.providerPost(t, "/api/v1/webhooks/ses", old, snsHeader), 401, "", nil)

	// SendGrid.
	events := []byte(`[{"email":"ola@example.com","event":"spamreport","sg_event_id":"sg-1","timestamp":1765000000},
		{"email":"ola@example.com","event":"open","sg_event_id":"sg-2"}]`)
	sgHeader := func(body []byte, at time.Time) http.Header {
		sig, stamp := sg.Sign(body, at)
		return http.Header{"Content-Type": {"application/json"}, "X-Twilio-Email-Event-Webhook-Signature": {sig},
			"X-Twilio-Email-Event-Webhook-Timestamp": {stamp}}
	}
	want("SendGrid spam report", ts.providerPost(t, "/api/v1/webhooks/sendgrid", events, sgHeader(events, now)), 200, "applied", 1)
	want("SendGrid again", ts.providerPost(t, "/api/v1/webhooks/sendgrid", events, sgHeader(events, now)), 200, "duplicates", 1)
	h := sgHeader(events, now)
	want("SendGrid forged", ts.providerPost(t, "/api/v1/webhooks/sendgrid",
		bytes.ReplaceAll(events, []byte("ola@"), []byte("victim@")), h), 401, "", nil)
	want("SendGrid unsigned", ts.providerPost(t, "/api/v1/webhooks/sendgrid", events, jsonHeader()), 401, "", nil)
	victim := []byte(`[{"email":"victim@example.com","event":"spamreport","sg_event_id":"sg-3"}]`)
	want("SendGrid replayed", ts.providerPost(t, "/api/v1/webhooks/sendgrid", victim,
		sgHeader(victim, now.Add(-time.Hour))), 401, "", nil)

	// Mailgun.
	failed := mg.Body(providertest.MailgunFailed("mg-1", "per@example.com", "permanent",
		campaigns.MessageID(ts.runID, per, "club.example")), now, "token-1")
	want("Mailgun failure", ts.providerPost(t, "/api/v1/webhooks/mailgun", failed, jsonHeader()), 200, "applied", 1)
	want("Mailgun again", ts.providerPost(t, "/api/v1/webhooks/mailgun", failed, jsonHeader()), 200, "duplicates", 1)
	want("Mailgun forged", ts.providerPost(t, "/api/v1/webhooks/mailgun", bytes.Replace(failed, []byte("per@"), []byte("victim@"), 1),
		jsonHeader()), 200, "duplicates", 1) // the token is spent: another event under it is a repeat
	want("Mailgun other key", ts.providerPost(t, "/api/v1/webhooks/mailgun", providertest.Mailgun{Key: "guess"}.Body(
		providertest.MailgunComplained("mg-2", "victim@example.com", ""), now, "token-2"), jsonHeader()), 401, "", nil)
	want("Mailgun replayed", ts.providerPost(t, "/api/v1/webhooks/mailgun", mg.Body(
		providertest.MailgunComplained("mg-3", "victim@example.com", ""), now.Add(-time.Hour), "token-3"), jsonHeader()), 401, "", nil)

	// Postmark.
	pm := http.Header{"Content-Type": {"application/json"}}
	pmAuth := func(user, pass string) http.Header {
		h := pm.Clone()
		r := &http.Request{Header: h}
		r.SetBasicAuth(user, pass)
		return h
	}
	rec := providertest.PostmarkBounce(901, "lise@example.com", "HardBounce")
	want("Postmark bounce", ts.providerPost(t, "/api/v1/webhooks/postmark", rec, pmAuth("postmark", "correct-horse-battery")), 200, "applied", 1)
	want("Postmark again", ts.providerPost(t, "/api/v1/webhooks/postmark", rec, pmAuth("postmark", "correct-horse-battery")), 200, "duplicates", 1)
	res := ts.providerPost(t, "/api/v1/webhooks/postmark", providertest.PostmarkComplaint(902, "victim@example.com"), pmAuth("postmark", "guess"))
	want("Postmark wrong password", res, 401, "", nil)
	if res.Header.Get("WWW-Authenticate") == "" {
		t.Error("no WWW-Authenticate on a refused Postmark call")
	}
	want("Postmark no auth", ts.providerPost(t, "/api/v1/webhooks/postmark", providertest.PostmarkComplaint(903, "victim@example.com"), pm), 401, "", nil)

	// What changed: the four genuine reports, once each; the victim untouched.
	if n := ts.count(t, `SELECT count(*) FROM email_suppressions WHERE suppressed_at IS NOT NULL`); n != 4 {
		t.Errorf("%d suppressed addresses, want 4", n)
	}
	if n := ts.count(t, `SELECT count(*) FROM email_suppressions WHERE email = 'victim@example.com'`); n != 0 {
		t.Error("a refused request suppressed the victim")
	}
	if n := ts.count(t, `SELECT count(*) FROM campaign_recipients WHERE bounced_at IS NOT NULL AND member_id IN ($1, $2)`, kari, per); n != 2 {
		t.Errorf("%d of kari's and per's mails marked bounced, want 2", n)
	}
	if n := ts.count(t, `SELECT count(*) FROM consents c JOIN members m ON m.id = c.member_id
		WHERE m.email = 'ola@example.com' AND NOT c.granted AND c.source = 'sendgrid'`); n != 1 {
		t.Errorf("%d consent withdrawals by sendgrid for ola, want 1", n)
	}
	if n := ts.count(t, `SELECT count(*) FROM members WHERE email = 'victim@example.com' AND marketing_consent = 'confirmed'`); n != 1 {
		t.Error("the victim's consent changed")
	}
}

// TestAutoPauseInStats: bounces reported through the generic webhook pass 5 % of 500 mails;
// the campaign pauses itself and its stats say why.
func TestAutoPauseInStats(t *testing.T) {
	ts := newTrackingShop(t, false)
	ctx := context.Background()
	if _, err := ts.db.Pool.Exec(ctx, `
		WITH m AS (
		    INSERT INTO members (card, email, name, status, marketing_consent, source)
		    SELECT '39' || lpad(i::text, 11, '0'), 'b' || i || '@example.com', 'B' || i, 'active', 'confirmed', 'test'
		    FROM generate_series(1, 500) i RETURNING id, email)
		INSERT INTO campaign_recipients (run_id, member_id, email, status, sent_at)
		SELECT $1, id, email, 'sent', $2 FROM m`, ts.runID, ts.startedAt.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	tok, err := ts.db.CreateAPIKey(ctx, models.RoleWebhook, "", "provider")
	if err != nil {
		t.Fatal(err)
	}
	stats := func() map[string]any {
		res := ts.do(t, "GET", fmt.Sprintf("/api/v1/campaigns/%d/stats", ts.campaignID), ts.marketer, nil)
		if res.Status != 200 {
			t.Fatalf("stats: %d %s", res.Status, res.Body)
		}
		return res.JSON(t)
	}
	for i := 1; i <= 26; i++ {
		if i == 26 {
			if got := stats()["auto_paused"]; got != nil {
				t.Fatalf("auto_paused %v at 25 bounces in 500", got)
			}
		}
		res := ts.do(t, "POST", "/api/v1/webhooks/bounce", tok, map[string]any{
			"email": fmt.Sprintf("b%d@example.com", i), "type": "hard", "event_id": fmt.Sprintf("ev-%d", i)})
		if res.Status != 200 {
			t.Fatalf("bounce %d: %d %s", i, res.Status, res.Body)
		}
	}
	got, _ := stats()["auto_paused"].(map[string]any)
	if got == nil || got["reason"] != "bounce rate 5.2 % (26 of 500 mails) is above 5 %" {
		t.Fatalf("auto_paused %v", stats()["auto_paused"])
	}
	if n := ts.count(t, `SELECT count(*) FROM campaigns WHERE id = $1 AND status = 'paused'`, ts.campaignID); n != 1 {
		t.Error("the campaign is not paused")
	}
}
