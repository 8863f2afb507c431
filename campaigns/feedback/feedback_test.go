package feedback

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/dispatch"
	"github.com/regulars/regulars/campaigns/providers"
	"github.com/regulars/regulars/campaigns/tracking"
	"github.com/regulars/regulars/flows"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type fixture struct {
	t  *testing.T
	db *models.DB
}

func newFixture(t *testing.T) *fixture {
	return &fixture{t: t, db: dbtest.New(t)}
}

func (f *fixture) id(sql string, args ...any) int64 {
	f.t.Helper()
	var id int64
	if err := f.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&id); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return id
}

// members makes n members m<i>@x.example (i from first) with confirmed marketing consent, in
// one statement.
func (f *fixture) members(first, n int) {
	f.t.Helper()
	if _, err := f.db.Pool.Exec(context.Background(), `
		INSERT INTO members (card, email, name, status, marketing_consent, source)
		SELECT lpad(i::text, 13, '0'), 'm' || i || '@x.example', 'M' || i, 'active', 'confirmed', 'test'
		FROM generate_series($1::int, $1::int + $2::int - 1) i`, first, n); err != nil {
		f.t.Fatal(err)
	}
}

// campaignRun makes a sending campaign (or takes campaignID) and a sending run of it that
// mailed members first..first+n-1, all sent.
func (f *fixture) campaignRun(campaignID int64, first, n int) (int64, int64) {
	f.t.Helper()
	if campaignID == 0 {
		campaignID = f.id(`INSERT INTO campaigns (name, subject, html, status) VALUES ('Dec', 'Hi', '<p>Hi</p>', 'sending') RETURNING id`)
	}
	runID := f.id(`INSERT INTO campaign_runs (campaign_id, scheduled_for, status, started_at)
		VALUES ($1, now() - (SELECT count(*) FROM campaign_runs) * interval '1 minute', 'sending', now()) RETURNING id`, campaignID)
	if _, err := f.db.Pool.Exec(context.Background(), `
		INSERT INTO campaign_recipients (run_id, member_id, email, status, sent_at)
		SELECT $1, id, email, 'sent', now() - interval '1 minute' FROM members
		WHERE card::bigint BETWEEN $2 AND $2 + $3 - 1`, runID, first, n); err != nil {
		f.t.Fatal(err)
	}
	return campaignID, runID
}

func (f *fixture) memberID(email string) int64 {
	return f.id(`SELECT id FROM members WHERE email = $1`, email)
}

func (f *fixture) str(sql string, args ...any) string {
	f.t.Helper()
	var s string
	if err := f.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func record(t *testing.T, db *models.DB, events ...providers.Event) *Summary {
	t.Helper()
	s, err := Record(context.Background(), db, events)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestComplaintWithdrawsConsentWithEvidence: a complaint suppresses the address, marks the mail
// its Message-ID names, withdraws the member's consent with the provider as the source; the
// same event again changes nothing.
func TestComplaintWithdrawsConsentWithEvidence(t *testing.T) {
	f := newFixture(t)
	f.members(1, 3)
	_, run1 := f.campaignRun(0, 1, 3)
	_, run2 := f.campaignRun(0, 1, 3) // newer: a complaint by address alone would land here
	m2 := f.memberID("m2@x.example")
	ev := providers.Event{Provider: providers.SendGrid, Kind: providers.Complaint, Email: "M2@x.example",
		MessageID: campaigns.MessageID(run1, m2, "shop.example"), Keys: []string{"sg-1"}}
	if s := record(t, f.db, ev); s.Applied != 1 || s.Duplicates != 0 {
		t.Fatalf("summary %+v", s)
	}
	for i := 0; i < 2; i++ {
		if got := f.str(`SELECT marketing_consent FROM members WHERE id = $1`, m2); got != "withdrawn" {
			t.Errorf("consent %s", got)
		}
		if n := f.id(`SELECT count(*) FROM consents WHERE member_id = $1 AND NOT granted AND source = 'sendgrid'
			AND purpose = $2`, m2, models.PurposeMarketingEmail); n != 1 {
			t.Errorf("%d withdrawals recorded with source sendgrid, want 1", n)
		}
		if n := f.id(`SELECT complaints FROM email_suppressions WHERE email = 'm2@x.example' AND suppressed_at IS NOT NULL`); n != 1 {
			t.Errorf("complaints %d", n)
		}
		if n := f.id(`SELECT count(*) FROM campaign_recipients WHERE complained_at IS NOT NULL AND run_id = $1 AND member_id = $2`, run1, m2); n != 1 {
			t.Error("the mail the Message-ID names was not marked")
		}
		if n := f.id(`SELECT count(*) FROM campaign_recipients WHERE complained_at IS NOT NULL`); n != 1 {
			t.Errorf("%d mails marked complained", n)
		}
		if n := f.id(`SELECT complained FROM campaign_runs WHERE id = $1`, run1); n != 1 {
			t.Errorf("run counter %d", n)
		}
		// Delivered again: a duplicate.
		if s := record(t, f.db, ev); s.Duplicates != 1 || s.Applied != 0 {
			t.Fatalf("repeat: summary %+v", s)
		}
	}
	if suppressed, _ := tracking.IsSuppressed(context.Background(), f.db, "m2@x.example"); !suppressed {
		t.Error("not suppressed")
	}
	_ = run2
}

// TestBounceMatchesMessageID: a hard bounce with a campaign Message-ID marks that exact mail,
// without one the newest mail to the address; a repeated event counts once.
func TestBounceMatchesMessageID(t *testing.T) {
	f := newFixture(t)
	f.members(1, 2)
	_, older := f.campaignRun(0, 1, 2)
	_, newer := f.campaignRun(0, 1, 2)
	m1, m2 := f.memberID("m1@x.example"), f.memberID("m2@x.example")
	exact := providers.Event{Provider: providers.Mailgun, Kind: providers.HardBounce, Email: "m1@x.example",
		MessageID: campaigns.MessageID(older, m1, "shop.example"), Keys: []string{"mg-1", "token:t1"}}
	byAddress := providers.Event{Provider: providers.Postmark, Kind: providers.HardBounce, Email: "m2@x.example", Keys: []string{"77"}}
	if s := record(t, f.db, exact, byAddress, exact); s.Applied != 2 || s.Duplicates != 1 {
		t.Fatalf("summary %+v", s)
	}
	for _, c := range []struct {
		run, member int64
		want        int64
	}{{older, m1, 1}, {newer, m1, 0}, {older, m2, 0}, {newer, m2, 1}} {
		if n := f.id(`SELECT count(*) FROM campaign_recipients WHERE run_id = $1 AND member_id = $2 AND bounced_at IS NOT NULL`,
			c.run, c.member); n != c.want {
			t.Errorf("run %d member %d: bounced %d, want %d", c.run, c.member, n, c.want)
		}
	}
	if n := f.id(`SELECT hard_bounces FROM email_suppressions WHERE email = 'm1@x.example'`); n != 1 {
		t.Errorf("hard bounces %d, want 1 (the repeat is not counted)", n)
	}
	// A Mailgun signature's token is one-time: another event under the same token is refused.
	reused := providers.Event{Provider: providers.Mailgun, Kind: providers.Complaint, Email: "m2@x.example", Keys: []string{"mg-2", "token:t1"}}
	if s := record(t, f.db, reused); s.Duplicates != 1 {
		t.Fatalf("reused token: %+v", s)
	}
	if got := f.str(`SELECT marketing_consent FROM members WHERE id = $1`, m2); got != "confirmed" {
		t.Errorf("a reused token's complaint withdrew consent (%s)", got)
	}
}

func bounce(i int) providers.Event {
	email := "m" + strconv.Itoa(i) + "@x.example"
	return providers.Event{Provider: providers.SES, Kind: providers.HardBounce, Email: email, Keys: []string{"ses-" + email}}
}

// TestAutoPauseCampaign: 600 mails sent; the 30th bounce is 5 % exactly and pauses nothing, the
// 31st passes 5 % and pauses the campaign with the reason. The recipients are counted only once
// the counters could pass a limit.
func TestAutoPauseCampaign(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.members(1, 600)
	campaignID, run := f.campaignRun(0, 1, 600)
	for i := 1; i <= 30; i++ {
		if s := record(t, f.db, bounce(i)); s.Applied != 1 {
			t.Fatalf("bounce %d: %+v", i, s)
		}
		seen := f.id(`SELECT sent_seen FROM campaign_runs WHERE id = $1`, run)
		if i <= 25 && seen != 0 {
			t.Fatalf("after %d bounces the recipients were counted (%d)", i, seen)
		}
		if i == 26 && seen != 600 {
			t.Fatalf("after 26 bounces sent_seen %d, want 600", seen)
		}
	}
	if got := f.str(`SELECT status FROM campaigns WHERE id = $1`, campaignID); got != campaigns.StatusSending {
		t.Fatalf("paused at exactly 5 %%: %s", got)
	}
	record(t, f.db, bounce(31))
	if got := f.str(`SELECT status FROM campaigns WHERE id = $1`, campaignID); got != campaigns.StatusPaused {
		t.Fatalf("campaign %s after 31 bounces in 600", got)
	}
	if got := f.str(`SELECT status FROM campaign_runs WHERE id = $1`, run); got != "paused" {
		t.Errorf("run %s", got)
	}
	p, err := CampaignAutoPause(ctx, f.db, campaignID)
	if err != nil || p == nil || !strings.Contains(p.Reason, "bounce rate 5.2 % (31 of 600 mails)") {
		t.Fatalf("auto-pause %+v %v", p, err)
	}
	// Resumed by a marketer, the run is not paused again by later bounces.
	if _, err := dispatch.Resume(ctx, f.db, campaignID); err != nil {
		t.Fatal(err)
	}
	record(t, f.db, bounce(32))
	if got := f.str(`SELECT status FROM campaigns WHERE id = $1`, campaignID); got != campaigns.StatusSending {
		t.Errorf("resumed campaign paused again: %s", got)
	}
	if p, _ := CampaignAutoPause(ctx, f.db, campaignID); p != nil {
		t.Errorf("a sending campaign shows an auto-pause: %+v", p)
	}
}

// TestAutoPauseFlowOnComplaints: a flow's step runs are summed; 2 complaints in 1000 mails pass
// 0.1 % and pause the flow, which says why.
func TestAutoPauseFlowOnComplaints(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	in, err := flows.ParseInput([]byte(`{"name": "Welcome", "trigger": {"event": "joined"},
		"steps": [{"mail": {"subject": "Welcome", "text": "Hello."}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	fl, err := flows.Create(ctx, f.db, "club@shop.example", in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := flows.Activate(ctx, f.db, fl.ID); err != nil {
		t.Fatal(err)
	}
	step := f.id(`SELECT id FROM campaigns WHERE flow_id = $1`, fl.ID)
	f.members(1, 1000)
	f.campaignRun(step, 1, 500)
	f.campaignRun(step, 501, 500)
	complaint := func(i int) providers.Event {
		return providers.Event{Provider: providers.Postmark, Kind: providers.Complaint, Email: "m" + strconv.Itoa(i) + "@x.example",
			Keys: []string{"pm-" + strconv.Itoa(i)}}
	}
	record(t, f.db, complaint(1))
	if got := f.str(`SELECT status FROM flows WHERE id = $1`, fl.ID); got != flows.StatusActive {
		t.Fatalf("flow %s after 1 complaint in 1000", got)
	}
	record(t, f.db, complaint(600))
	if got := f.str(`SELECT status FROM flows WHERE id = $1`, fl.ID); got != flows.StatusPaused {
		t.Fatalf("flow %s after 2 complaints in 1000", got)
	}
	p, err := FlowAutoPause(ctx, f.db, fl.ID)
	if err != nil || p == nil || !strings.Contains(p.Reason, "complaint rate 0.20 % (2 of 1000 mails)") {
		t.Fatalf("auto-pause %+v %v", p, err)
	}
	// Activated again, the flow starts afresh: the old reason is not shown.
	if _, err := flows.Activate(ctx, f.db, fl.ID); err != nil {
		t.Fatal(err)
	}
	if p, _ := FlowAutoPause(ctx, f.db, fl.ID); p != nil {
		t.Errorf("active flow shows %+v", p)
	}
}
