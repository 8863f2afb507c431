package handlers

// The member 360 (issue 13.5): the console member page's figures and timeline.

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// member360Fixture adds to newMemFixture's member (two sales, 2590.00 and 129.50 NOK; tiers
// Silver at 1000 and Gold at 5000) a metrics row, a campaign mail opened and clicked, a flow
// mail neither, and a consent withdrawal.
func member360Fixture(t *testing.T) *memFixture {
	t.Helper()
	f := newMemFixture(t)
	ctx := context.Background()
	id := f.member.ID
	now := time.Now()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO metric_runs (as_of, timezone, window_days, churn_days, lifespan_cap_years, finished_at, status)
		  VALUES ('2026-11-30', 'UTC', 365, 90, 10, now(), 'done')`, nil},
		{`INSERT INTO member_metrics (member_id, run_id, as_of, orders_365d, spend_365d, p_alive, expected_purchases,
		      clv_predicted, rfm_segment, recency_score, frequency_score, monetary_score)
		  SELECT $1, max(id), '2026-11-30', 2, 271950, 0.873, 3.26, 412345, 'Potential loyalists', 5, 3, 4 FROM metric_runs`, []any{id}},
		{`INSERT INTO campaigns (name, subject, text, status) VALUES ('December vinyl', 'New records are in', 'hi', 'sent')`, nil},
		{`INSERT INTO flows (name, trigger, steps) VALUES ('Welcome series', '{}', '[]')`, nil},
		{`INSERT INTO campaigns (name, subject, text, status, flow_id, flow_step)
		  SELECT 'Welcome series: step 1', 'Welcome to the club', 'hi', 'sent', max(id), 0 FROM flows`, nil},
		{`INSERT INTO campaign_runs (campaign_id, scheduled_for, status) SELECT id, $1, 'sent' FROM campaigns`, []any{now}},
		{`INSERT INTO campaign_recipients (run_id, member_id, email, status, sent_at)
		  SELECT r.id, $1, 'kari.nordmann@example.com', 'sent', $2::timestamptz - (c.id * interval '1 day')
		  FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id`, []any{id, now}},
		{`INSERT INTO campaign_links (campaign_id, url) SELECT id, 'https://shop.example/' FROM campaigns WHERE flow_id IS NULL`, nil},
		{`INSERT INTO campaign_opens (run_id, member_id) SELECT r.id, $1 FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id WHERE c.flow_id IS NULL`, []any{id}},
		{`INSERT INTO campaign_clicks (run_id, member_id, link_id) SELECT r.id, $1, l.id FROM campaign_runs r JOIN campaign_links l USING (campaign_id)`, []any{id}},
		{`INSERT INTO consents (member_id, purpose, granted, source, recorded_at) VALUES ($1, 'marketing', false, 'unsubscribe', $2)`, []any{id, now.Add(-time.Hour)}},
	} {
		if _, err := f.DB.Pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	return f
}

func TestConsoleMember360(t *testing.T) {
	f := member360Fixture(t)
	marketer, _ := f.loginAs(t, "marketer")
	res := f.get(t, marketer, fmt.Sprintf("/console/members/%d", f.member.ID))
	if res.Status != http.StatusOK {
		t.Fatalf("%d\n%s", res.Status, res.Body)
	}
	section := func(id string) string {
		m := regexp.MustCompile(`(?s)id="` + id + `".*?</(dl|table)>`).FindString(res.Body)
		if m == "" {
			t.Fatalf("no #%s in\n%s", id, res.Body)
		}
		return m
	}
	t.Run("the figures: historic and predicted CLV, p_alive, RFM, tier progress", func(t *testing.T) {
		value := section("member-value")
		for _, want := range []string{
			"2\u202f719.50 NOK", // historic: both sales
			"4\u202f123.45 NOK", // predicted
			"3.3",               // expected purchases
			"87.3 %",            // p_alive
			"Potential loyalists", "R 5 · F 3 · M 4",
			"Silver", "2\u202f280.50 NOK more to Gold", `value="0.5439`,
		} {
			if !strings.Contains(value, want) {
				t.Errorf("no %q in\n%s", want, value)
			}
		}
	})
	t.Run("the timeline: purchases, mails (campaign or flow, opened, clicked) and consent changes, newest first", func(t *testing.T) {
		timeline := section("timeline")
		var order []string
		for _, m := range regexp.MustCompile(`<tr class="timeline-(\w+)">`).FindAllStringSubmatch(timeline, -1) {
			order = append(order, m[1])
		}
		// The consent given at enrolment (just now), its withdrawal an hour ago, the campaign's
		// mail a day ago, the flow's two days ago, the sales 29 and 30 days ago.
		want := []string{"consent", "consent", "mail", "mail", "purchase", "purchase"}
		if fmt.Sprint(order) != fmt.Sprint(want) {
			t.Fatalf("order %v, want %v\n%s", order, want, timeline)
		}
		for _, want := range []string{
			"campaign <a href=\"/console/campaigns/", "December vinyl", "“New records are in”: opened, clicked",
			"flow <a href=\"/console/flows/", "Welcome series", "“Welcome to the club”: not opened, not clicked",
			"Consent withdrawn", "marketing, unsubscribe", "receipt R-2 at oslo-1", "129.50 NOK",
		} {
			if !strings.Contains(timeline, want) {
				t.Errorf("no %q in\n%s", want, timeline)
			}
		}
	})
	t.Run("before any metrics run and without purchases the page says so", func(t *testing.T) {
		ctx := context.Background()
		if _, err := f.DB.Pool.Exec(ctx, `DELETE FROM member_metrics`); err != nil {
			t.Fatal(err)
		}
		other := enrolMember(t, f.DB, "ola@example.com")
		res := f.get(t, marketer, fmt.Sprintf("/console/members/%d", other.ID))
		value := regexp.MustCompile(`(?s)id="member-value".*?</section>`).FindString(res.Body)
		for _, want := range []string{"0.00 NOK", "Predictions and RFM appear after the first metrics run", "no tier", "more to Silver"} {
			if !strings.Contains(value, want) {
				t.Errorf("no %q in\n%s", want, value)
			}
		}
	})
}

// enrolMember enrols a member with email at the till of store oslo-1.
func enrolMember(t *testing.T, db *models.DB, email string) *models.Member {
	t.Helper()
	ctx := context.Background()
	token, err := db.CreateAPIKey(ctx, models.RoleRegister, "oslo-1", "enrol "+email)
	if err != nil {
		t.Fatal(err)
	}
	p, err := db.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	no := false
	m, err := db.CreateMember(ctx, p, models.MemberInput{Email: email, HomeStore: "oslo-1", MarketingConsent: &no}, models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The timeline never holds more than models.MaxTimeline events, however long the history.
func TestMemberTimelineIsBounded(t *testing.T) {
	f := newMemFixture(t)
	ctx := context.Background()
	if _, err := f.DB.Pool.Exec(ctx, `INSERT INTO consents (member_id, purpose, granted, source, recorded_at)
		SELECT $1, 'marketing', i % 2 = 0, 'test', now() - i * interval '1 minute' FROM generate_series(1, 250) i`, f.member.ID); err != nil {
		t.Fatal(err)
	}
	events, err := f.DB.FindMemberTimeline(ctx, f.member.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != models.MaxTimeline {
		t.Fatalf("%d events", len(events))
	}
	for i := 1; i < len(events); i++ {
		if events[i].At.After(events[i-1].At) {
			t.Fatalf("event %d is newer than the one before", i)
		}
	}
}
