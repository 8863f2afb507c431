package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/tracking"
)

var trackingSecret = []byte("tracking-test-secret-0123456789ab")

// trackingShop is a till with the tracking secret set, a campaign (opens tracked or not) and one
// run started a day before now.
type trackingShop struct {
	*till
	campaignID, runID int64
	startedAt         time.Time
}

func newTrackingShop(t *testing.T, trackOpens bool) *trackingShop {
	t.Helper()
	tl := newTill(t)
	tl.srv.reconfigure(t, func(c *Config) { c.Club = ClubOptions{Secret: trackingSecret, BaseURL: "https://club.example"} })
	ts := &trackingShop{till: tl, startedAt: time.Now().Add(-24 * time.Hour).Truncate(time.Second)}
	ts.campaignID = ts.id(t, `WITH s AS (INSERT INTO segments (name, rules) VALUES ('Everyone', '{"all": []}') RETURNING id)
		INSERT INTO campaigns (name, subject, html, segment_id, holdout_percent, status, track_opens)
		SELECT 'November', 'Hi', '<p>Hi</p>', id, 50, 'sending', $1 FROM s RETURNING id`, trackOpens)
	ts.runID = ts.id(t, `INSERT INTO campaign_runs (campaign_id, scheduled_for, status, started_at)
		VALUES ($1, $2, 'sending', $2) RETURNING id`, ts.campaignID, ts.startedAt)
	return ts
}

func (ts *trackingShop) id(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var id int64
	if err := ts.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&id); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return id
}

// recipient adds a member called name to the run: status sent (an hour after the start) or
// held_out. It returns the member's id.
func (ts *trackingShop) recipient(t *testing.T, name, status string) int64 {
	t.Helper()
	id := ts.id(t, `INSERT INTO members (card, email, name, status, marketing_consent, source)
		VALUES (lpad((SELECT count(*) + 1 FROM members)::text, 13, '7'), $1, $2, 'active', 'confirmed', 'test') RETURNING id`,
		name+"@example.com", name)
	var sentAt *time.Time
	if status == "sent" {
		at := ts.startedAt.Add(time.Hour)
		sentAt = &at
	}
	if _, err := ts.db.Pool.Exec(context.Background(), `INSERT INTO campaign_recipients (run_id, member_id, email, held_out, status, sent_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, ts.runID, id, name+"@example.com", status == "held_out", status, sentAt); err != nil {
		t.Fatal(err)
	}
	return id
}

// buy records a NOK sale of amount by member at the given time after the run's start.
func (ts *trackingShop) buy(t *testing.T, memberID, amount int64, after time.Duration) {
	t.Helper()
	hash := sha256.Sum256(fmt.Appendf(nil, "%d-%d-%d", memberID, amount, after))
	if _, err := ts.db.Pool.Exec(context.Background(), `INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, content_hash)
		SELECT id, $1, 'sale', $2, $3, 'NOK', $4, $5 FROM stores WHERE code = 'oslo-1'`,
		fmt.Sprintf("T-%x", hash[:6]), ts.startedAt.Add(after), amount, memberID, hash[:]); err != nil {
		t.Fatal(err)
	}
}

// get requests path without following redirects and checks the exchange against openapi.yaml.
func (ts *trackingShop) get(t *testing.T, path string) *response {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(ts.ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	out := &response{Status: res.StatusCode, Header: res.Header, Body: body}
	req, _ := http.NewRequest(http.MethodGet, "http://localhost"+path, nil)
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		ts.check(t, req, out)
		return out
	}
	// kin-openapi decodes no HTML: check the route and that the status is documented as a page.
	_, router := loadSpec(t)
	route, _, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("GET %s is not in openapi.yaml: %v", path, err)
	}
	if r := route.Operation.Responses.Status(res.StatusCode); r == nil || r.Value.Content.Get("text/html") == nil {
		t.Errorf("GET %s: status %d is not documented as an HTML page", path, res.StatusCode)
	}
	return out
}

func TestBounceWebhook(t *testing.T) {
	ts := newTrackingShop(t, false)
	ts.recipient(t, "kari", "sent")
	hard := map[string]any{"email": "Kari@Example.com", "type": "hard", "reason": "550 5.1.1 user unknown"}
	cases := []struct {
		name   string
		token  string
		body   any
		status int
		field  string
	}{
		{"without a token it is unauthorized", "", hard, 401, ""},
		{"a marketer may not report bounces", ts.marketer, hard, 403, ""},
		{"a register may not report bounces", ts.oslo, hard, 403, ""},
		{"a bad address is invalid", ts.admin, map[string]any{"email": "kari at example", "type": "hard"}, 422, "email"},
		{"an unknown type is invalid", ts.admin, map[string]any{"email": "kari@example.com", "type": "permanent"}, 422, "type"},
		{"a missing type is invalid", ts.admin, map[string]any{"email": "kari@example.com"}, 422, "type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, ts.do(t, "POST", "/api/v1/webhooks/bounce", tc.token, tc.body), tc.status, tc.field)
		})
	}
	if n := ts.count(t, `SELECT count(*) FROM email_suppressions`); n != 0 {
		t.Fatalf("refused bounces stored %d suppressions", n)
	}

	bounce := func(t *testing.T, body map[string]any) map[string]any {
		t.Helper()
		res := ts.do(t, "POST", "/api/v1/webhooks/bounce", ts.admin, body)
		if res.Status != 200 {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		return res.JSON(t)
	}
	t.Run("a hard bounce suppresses the address and marks the mail bounced", func(t *testing.T) {
		got := bounce(t, hard)
		if got["email"] != "kari@example.com" || got["suppressed"] != true {
			t.Errorf("answer %v", got)
		}
		if n := ts.count(t, `SELECT count(*) FROM campaign_recipients WHERE bounced_at IS NOT NULL`); n != 1 {
			t.Errorf("%d mails marked bounced, want 1", n)
		}
	})
	t.Run("the third soft bounce suppresses", func(t *testing.T) {
		for i, want := range []bool{false, false, true} {
			got := bounce(t, map[string]any{"email": "ola@example.com", "type": "soft"})
			if got["suppressed"] != want {
				t.Errorf("soft bounce %d: suppressed %v, want %v", i+1, got["suppressed"], want)
			}
		}
	})
}

func TestClickRedirect(t *testing.T) {
	ts := newTrackingShop(t, false)
	ctx := context.Background()
	kari := ts.recipient(t, "kari", "sent")
	target := "https://shop.example.com/vinyl?id=7&utm_source=club"
	ids, err := tracking.LinkIDs(ctx, ts.db, ts.campaignID, []string{target})
	if err != nil {
		t.Fatal(err)
	}
	ref := tracking.Ref{RunID: ts.runID, MemberID: kari, LinkID: ids[target]}
	good := tracking.SignClick(trackingSecret, ref)
	clicks := func() int { return ts.count(t, `SELECT count(*) FROM campaign_clicks`) }

	t.Run("a click is recorded and redirected to the link", func(t *testing.T) {
		for i := 1; i <= 2; i++ {
			res := ts.get(t, "/c/"+good)
			if res.Status != http.StatusFound || res.Header.Get("Location") != target {
				t.Fatalf("%d, Location %q; want 302 to %s", res.Status, res.Header.Get("Location"), target)
			}
			if n := clicks(); n != i {
				t.Errorf("%d clicks recorded after %d, want one row per click", n, i)
			}
		}
		if got := ts.count(t, `SELECT count(*) FROM campaign_clicks WHERE run_id = $1 AND member_id = $2 AND link_id = $3`, ref.RunID, ref.MemberID, ref.LinkID); got != 2 {
			t.Errorf("%d clicks of kari on the link, want 2", got)
		}
	})

	otherCampaign := ts.id(t, `INSERT INTO campaigns (name, subject, html) VALUES ('Other', 'x', 'x') RETURNING id`)
	evil, err := tracking.LinkIDs(ctx, ts.db, otherCampaign, []string{"https://evil.example.net/"})
	if err != nil {
		t.Fatal(err)
	}
	tampered := []byte(good)
	tampered[len(tampered)-3] ^= 2
	bad := map[string]string{
		"a tampered token":                       string(tampered),
		"a token of another secret":              tracking.SignClick([]byte("not our secret"), ref),
		"a token naming another campaign's link": tracking.SignClick(trackingSecret, tracking.Ref{RunID: ts.runID, MemberID: kari, LinkID: evil["https://evil.example.net/"]}),
		"an open token":                          tracking.SignOpen(trackingSecret, ref),
		"an address in place of the token":       "https:%2F%2Fevil.example.net",
		"a valid token with an address after it": good + "https:%2F%2Fevil.example.net",
		"a token for a run that does not exist":  tracking.SignClick(trackingSecret, tracking.Ref{RunID: 999, MemberID: kari, LinkID: ref.LinkID}),
	}
	for name, tok := range bad {
		t.Run(name+" is the 404 page and redirects nowhere", func(t *testing.T) {
			before := clicks()
			res := ts.get(t, "/c/"+tok)
			if res.Status != http.StatusNotFound || res.Header.Get("Location") != "" {
				t.Errorf("%d, Location %q; want 404 without Location", res.Status, res.Header.Get("Location"))
			}
			if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
				t.Errorf("Content-Type %q, want the HTML 404 page", res.Header.Get("Content-Type"))
			}
			if clicks() != before {
				t.Error("a click was recorded")
			}
		})
	}
	t.Run("without a configured secret no token is accepted", func(t *testing.T) {
		ts.srv.reconfigure(t, func(c *Config) { c.Club = ClubOptions{} })
		defer ts.srv.reconfigure(t, func(c *Config) { c.Club = ClubOptions{Secret: trackingSecret} })
		if res := ts.get(t, "/c/"+tracking.SignClick(nil, ref)); res.Status != http.StatusNotFound {
			t.Errorf("a token signed with an empty key: %d", res.Status)
		}
	})
}

func TestOpenPixel(t *testing.T) {
	for _, trackOpens := range []bool{true, false} {
		t.Run(fmt.Sprintf("with track_opens %v", trackOpens), func(t *testing.T) {
			ts := newTrackingShop(t, trackOpens)
			kari := ts.recipient(t, "kari", "sent")
			res := ts.get(t, "/o/"+tracking.SignOpen(trackingSecret, tracking.Ref{RunID: ts.runID, MemberID: kari})+".gif")
			if res.Status != 200 || res.Header.Get("Content-Type") != "image/gif" || !strings.HasPrefix(string(res.Body), "GIF89a") {
				t.Fatalf("%d %q", res.Status, res.Header.Get("Content-Type"))
			}
			want := 0
			if trackOpens {
				want = 1
			}
			if n := ts.count(t, `SELECT count(*) FROM campaign_opens`); n != want {
				t.Errorf("%d opens recorded, want %d", n, want)
			}
			if res := ts.get(t, "/o/"+tracking.SignClick(trackingSecret, tracking.Ref{RunID: ts.runID, MemberID: kari, LinkID: 1})+".gif"); res.Status != 404 {
				t.Errorf("a click token as pixel: %d", res.Status)
			}
		})
	}
}

func TestCampaignStatsAPI(t *testing.T) {
	ts := newTrackingShop(t, true)
	ts.srv.reconfigure(t, func(c *Config) { c.Tracking = TrackingOptions{AttributionDays: 7, CostPerMail: 500} })
	path := fmt.Sprintf("/api/v1/campaigns/%d/stats", ts.campaignID)
	// Mailed: 3000 and 0 (mean 1500). Held out: 1000, 0 and a sale after the window (mean 1000/3).
	ada := ts.recipient(t, "ada", "sent")
	ts.recipient(t, "bo", "sent")
	ha := ts.recipient(t, "ha", "held_out")
	hb := ts.recipient(t, "hb", "held_out")
	ts.recipient(t, "hc", "held_out")
	ts.buy(t, ada, 3000, 2*time.Hour)
	ts.buy(t, ha, 1000, 2*time.Hour)
	ts.buy(t, hb, 700, 8*24*time.Hour)
	if _, err := ts.db.Pool.Exec(context.Background(), `INSERT INTO consents (member_id, purpose, granted, source, recorded_at)
		VALUES ($1, 'marketing_email', false, 'unsubscribe', $2)`, ada, ts.startedAt.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}

	t.Run("a register may not read stats", func(t *testing.T) {
		wantError(t, ts.do(t, "GET", path, ts.oslo, nil), 403, "")
	})
	t.Run("without a token it is unauthorized", func(t *testing.T) {
		wantError(t, ts.do(t, "GET", path, "", nil), 401, "")
	})
	t.Run("an unknown campaign is not found", func(t *testing.T) {
		wantError(t, ts.do(t, "GET", "/api/v1/campaigns/99999/stats", ts.marketer, nil), 404, "")
	})
	t.Run("a marketer reads the figures", func(t *testing.T) {
		res := ts.do(t, "GET", path, ts.marketer, nil)
		if res.Status != 200 {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		var st tracking.Stats
		if err := json.Unmarshal(res.Body, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Runs) != 1 {
			t.Fatalf("%d runs", len(st.Runs))
		}
		f := st.Runs[0].Figures
		if f.Sent != 2 || f.HeldOut != 3 || f.Unsubscribed != 1 || f.Opens == nil || *f.Opens != 0 {
			t.Errorf("figures %+v", f)
		}
		r := f.Revenue
		if r.Attributed != 3000 || r.Cost == nil || *r.Cost != 1000 || r.ROI == nil || *r.ROI != 2 {
			t.Errorf("revenue %+v", r)
		}
		if h := r.Holdout; h == nil || h.Revenue != 1000 || h.Members != 3 || h.Lift != 1500-1000.0/3 || h.LiftLow == nil {
			t.Errorf("holdout %+v", h)
		}
	})
	t.Run("a day after the send the figures are preliminary until the window closes, without a verdict", func(t *testing.T) {
		res := ts.do(t, "GET", path, ts.marketer, nil)
		var st tracking.Stats
		if err := json.Unmarshal(res.Body, &st); err != nil {
			t.Fatal(err)
		}
		final := ts.startedAt.Add(time.Hour + 7*24*time.Hour)
		if !st.Preliminary || st.FinalAt == nil || !st.FinalAt.Equal(final) {
			t.Errorf("preliminary %v, final_at %v; want true, %v (the last mail plus 7 days)", st.Preliminary, st.FinalAt, final)
		}
		if len(st.Runs) != 1 || !st.Runs[0].Preliminary || st.Runs[0].FinalAt == nil || !st.Runs[0].FinalAt.Equal(final) {
			t.Errorf("run %+v, want preliminary until %v", st.Runs, final)
		}
		if h := st.Total.Revenue.Holdout; h == nil || h.Verdict != nil {
			t.Errorf("holdout %+v, want figures without a verdict", h)
		}
		if !strings.Contains(string(res.Body), `"verdict":null`) || !strings.Contains(string(res.Body), `"preliminary":true`) {
			t.Errorf("the JSON lacks preliminary or a null verdict: %s", res.Body)
		}
	})
}
