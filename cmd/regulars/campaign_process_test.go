package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/dispatch"
	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// The campaign tests of the issue that need whole `regulars serve` processes: several replicas
// sharing one run, and a sender killed with SIGKILL in the middle of one.

// testSecret is the REGULARS_SECRET every replica of a test shares, as replicas must.
const testSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// campaignEnv is the environment of one serve replica sending through smtp.
func campaignEnv(t *testing.T, dbURL string, smtp *smtptest.Server, extra ...string) []string {
	return append([]string{"REGULARS_DATABASE_URL=" + dbURL, "REGULARS_DATA_DIR=" + t.TempDir(),
		"REGULARS_SMTP_URL=" + smtp.URL(), "REGULARS_BASE_URL=https://club.example",
		"REGULARS_MAIL_FROM=Regulars club <club@shop.example>", "REGULARS_SECRET=" + testSecret,
		"REGULARS_LOG_LEVEL=warn"}, extra...)
}

// openTestDB opens the test database for seeding and checking.
func openTestDB(t *testing.T, dbURL string) *models.DB {
	t.Helper()
	db, err := models.Open(context.Background(), dbURL, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// execSQL runs SQL statements on db, failing the test on error.
func execSQL(t *testing.T, db *models.DB, sql string, args ...any) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// memberEmails returns every member's id by lower-cased email.
func memberEmails(t *testing.T, db *models.DB) map[string]int64 {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT id, lower(email) FROM members WHERE email IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id int64
		var email string
		if err := rows.Scan(&id, &email); err != nil {
			t.Fatal(err)
		}
		out[email] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// scheduleCampaign creates the segment of every example.com member and a campaign to it
// through the API, schedules it lead from now and returns its id.
func scheduleCampaign(t *testing.T, marketer *apiClient, lead time.Duration) int64 {
	t.Helper()
	var seg struct{ ID int64 }
	if err := json.Unmarshal(marketer.mustDo(t, http.MethodPost, "/api/v1/segments", map[string]any{
		"name": "example.com", "rules": map[string]any{"field": "email_domain", "op": "eq", "value": "example.com"},
	}, http.StatusCreated), &seg); err != nil {
		t.Fatal(err)
	}
	var c struct{ ID int64 }
	if err := json.Unmarshal(marketer.mustDo(t, http.MethodPost, "/api/v1/campaigns", map[string]any{
		"name": "Process test", "subject": "Hello {{.Member.FirstName}}", "segment_id": seg.ID,
		"text": "New records are in.", "html": `<p>New records are in: <a href="https://shop.example/new">see them</a>.</p>`,
	}, http.StatusCreated), &c); err != nil {
		t.Fatal(err)
	}
	sendAt := time.Now().Add(lead).Truncate(time.Second).Add(time.Second)
	marketer.mustDo(t, http.MethodPost, fmt.Sprintf("/api/v1/campaigns/%d/schedule", c.ID),
		map[string]any{"send_at": sendAt.Format(time.RFC3339)}, http.StatusOK)
	return c.ID
}

// waitSent polls the campaign through the API until it is sent.
func waitSent(t *testing.T, client *apiClient, id int64, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var c struct{ Status string }
		if err := json.Unmarshal(client.mustDo(t, http.MethodGet, fmt.Sprintf("/api/v1/campaigns/%d", id), nil, http.StatusOK), &c); err != nil {
			t.Fatal(err)
		}
		if c.Status == "sent" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign %d still %s after %v", id, c.Status, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runOf returns the id of the campaign's only run.
func runOf(t *testing.T, db *models.DB, campaignID int64) int64 {
	t.Helper()
	var id int64
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT id FROM campaign_runs WHERE campaign_id = $1`, campaignID).Scan(&id); err != nil {
		t.Fatalf("the run of campaign %d: %v", campaignID, err)
	}
	return id
}

// tally counts what SMTP sinks received: mails per recipient address (lower-cased) and per
// Message-ID (without angle brackets).
type tally struct {
	byRcpt, byMessageID map[string]int
	total               int
}

func countMail(t *testing.T, sinks ...*smtptest.Server) tally {
	t.Helper()
	out := tally{byRcpt: map[string]int{}, byMessageID: map[string]int{}}
	for _, sink := range sinks {
		for _, m := range sink.Messages() {
			out.total++
			if len(m.To) != 1 {
				t.Errorf("a mail with %d envelope recipients %v, want 1", len(m.To), m.To)
			}
			for _, to := range m.To {
				out.byRcpt[strings.ToLower(to)]++
			}
			if m.Header == nil {
				t.Errorf("a mail to %v whose header did not parse", m.To)
				continue
			}
			if to := m.Header.Get("To"); len(m.To) == 1 && !strings.Contains(strings.ToLower(to), strings.ToLower(m.To[0])) {
				t.Errorf("envelope recipient %s but To: %s", m.To[0], to)
			}
			out.byMessageID[strings.Trim(m.Header.Get("Message-Id"), "<>")]++
		}
	}
	return out
}

// TestCampaignSharedByThreeServeProcesses is the test: a campaign to 2,000 members sent
// by three serve processes on one database, each with its own SMTP server. Every mailable member
// gets exactly one mail (counted by recipient and by Message-ID); pending, unconsenting,
// withdrawn, erased and bounced members get none; and the work is shared.
func TestCampaignSharedByThreeServeProcesses(t *testing.T) {
	dbURL := dbtest.URL(t)
	db := openTestDB(t, dbURL)
	// 2,000 members of example.com: 1,500 active with confirmed consent (a seventh of them
	// with a capitalised address), of whom 15 have a suppressed (bounced) address and 15 a
	// soft bounce that is not (yet) a suppression; then 100 each pending consent, no consent,
	// withdrawn consent, erased (address kept) and unconfirmed sign-ups.
	execSQL(t, db, `
		INSERT INTO members (card, email, name, status, marketing_consent, source)
		SELECT lpad(g::text, 13, '0'),
			CASE WHEN g % 7 = 0 THEN 'Member.' || g || '@Example.com' ELSE 'member.' || g || '@example.com' END,
			'Member ' || g,
			CASE WHEN g BETWEEN 1801 AND 1900 THEN 'erased' WHEN g > 1900 THEN 'pending' ELSE 'active' END,
			CASE WHEN g <= 1500 THEN 'confirmed' WHEN g <= 1600 THEN 'pending' WHEN g <= 1700 THEN 'none'
			     WHEN g <= 1800 THEN 'withdrawn' WHEN g <= 1900 THEN 'confirmed' ELSE 'pending' END,
			'till'
		FROM generate_series(1, 2000) g`)
	execSQL(t, db, `
		INSERT INTO email_suppressions (email, hard_bounces, soft_bounces, last_reason, suppressed_at)
		SELECT lower('member.' || g || '@example.com'), CASE WHEN g % 100 = 0 THEN 1 ELSE 0 END,
			CASE WHEN g % 100 = 0 THEN 0 ELSE 1 END, 'test',
			CASE WHEN g % 100 = 0 THEN now() END
		FROM generate_series(1, 1500) g WHERE g % 50 = 0`)
	want := map[string]bool{} // lower-cased address → mailable
	for g := 1; g <= 2000; g++ {
		want[fmt.Sprintf("member.%d@example.com", g)] = g <= 1500 && g%100 != 0
	}

	sinks := []*smtptest.Server{smtptest.New(t), smtptest.New(t), smtptest.New(t)}
	var servers []*server
	for _, sink := range sinks {
		// 150 mails a second each: one replica alone would need ten seconds, so the others,
		// which look for work every half second, are sure to join in.
		servers = append(servers, startServe(t, campaignEnv(t, dbURL, sink,
			"REGULARS_SEND_CONCURRENCY=2", "REGULARS_SEND_RATE=150")))
	}
	env := campaignEnv(t, dbURL, sinks[0])
	marketer := newAPIClient(servers[0].base, createKey(t, env, "--role", "marketer", "--name", "campaigns"))
	id := scheduleCampaign(t, marketer, 3*time.Second)
	waitSent(t, newAPIClient(servers[2].base, marketer.token), id, 3*time.Minute)
	runID := runOf(t, db, id)

	got := countMail(t, sinks...)
	emails := memberEmails(t, db)
	mailable := 0
	for addr, ok := range want {
		n := got.byRcpt[addr]
		switch {
		case ok:
			mailable++
			if n != 1 {
				t.Errorf("%s (mailable) got %d mails, want 1", addr, n)
			}
			mid := campaigns.MessageID(runID, emails[addr], "shop.example")
			if got.byMessageID[mid] != 1 {
				t.Errorf("Message-ID %s seen %d times, want 1", mid, got.byMessageID[mid])
			}
		case n != 0:
			t.Errorf("%s (not mailable) got %d mails, want none", addr, n)
		}
	}
	if got.total != mailable || len(got.byMessageID) != mailable {
		t.Errorf("the sinks received %d mails with %d Message-IDs, want %d of each", got.total, len(got.byMessageID), mailable)
	}
	var sent int
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM campaign_recipients WHERE run_id = $1 AND status = 'sent'`, runID).Scan(&sent); err != nil {
		t.Fatal(err)
	}
	if sent != mailable {
		t.Errorf("%d recipients recorded sent, want %d", sent, mailable)
	}

	split := make([]int, len(sinks))
	busy := 0
	for i, sink := range sinks {
		split[i] = sink.Count()
		if split[i] > 0 {
			busy++
		}
	}
	t.Logf("%d mails to %d mailable of 2000 members; per serve process %v", got.total, mailable, split)
	if busy < 2 {
		t.Errorf("only %d of 3 serve processes sent (split %v): the work was not shared", busy, split)
	}
}

// TestCampaignResumesAfterSIGKILL kills the only sender with SIGKILL once its SMTP server has
// received about 500 of 2,000 mails, starts serve again and waits for the campaign to be sent:
// no member is left out, and repeats are at most the mails in flight at the kill, which the
// dispatch package documents as one batch per worker (REGULARS_SEND_CONCURRENCY × its Batch:
// accepted mails are recorded a batch at a time).
func TestCampaignResumesAfterSIGKILL(t *testing.T) {
	const members, workers = 2000, 4
	const inFlight = workers * dispatch.DefaultBatch
	dbURL := dbtest.URL(t)
	db := openTestDB(t, dbURL)
	execSQL(t, db, `
		INSERT INTO members (card, email, name, status, marketing_consent, source)
		SELECT lpad(g::text, 13, '0'), 'member.' || g || '@example.com', 'Member ' || g, 'active', 'confirmed', 'till'
		FROM generate_series(1, $1::int) g`, members)
	sink := smtptest.New(t)
	env := campaignEnv(t, dbURL, sink, fmt.Sprintf("REGULARS_SEND_CONCURRENCY=%d", workers), "REGULARS_SEND_RATE=200")
	srv := startServe(t, env)
	marketer := newAPIClient(srv.base, createKey(t, env, "--role", "marketer", "--name", "campaigns"))
	id := scheduleCampaign(t, marketer, 2*time.Second)

	deadline := time.Now().Add(2 * time.Minute)
	for sink.Count() < 500 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d mails after 2 minutes", sink.Count())
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.signal(syscall.SIGKILL)
	if !srv.waitExit(30 * time.Second) {
		t.Fatal("serve did not die of SIGKILL")
	}
	atKill := sink.Count()
	var recordedSent int
	if err := db.Pool.QueryRow(context.Background(), `
		SELECT count(*) FROM campaign_recipients cr JOIN campaign_runs r ON r.id = cr.run_id
		WHERE r.campaign_id = $1 AND cr.status = 'sent'`, id).Scan(&recordedSent); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed with %d mails received and %d recorded sent", atKill, recordedSent)
	if atKill >= members {
		t.Fatalf("every mail went out before the kill; the test killed nothing mid-run")
	}

	// The mails the dead process held come back when their lease (30 s) expires.
	srv = startServe(t, env)
	waitSent(t, newAPIClient(srv.base, marketer.token), id, 3*time.Minute)
	runID := runOf(t, db, id)

	got := countMail(t, sink)
	emails := memberEmails(t, db)
	repeats := 0
	for g := 1; g <= members; g++ {
		addr := fmt.Sprintf("member.%d@example.com", g)
		n := got.byRcpt[addr]
		mid := campaigns.MessageID(runID, emails[addr], "shop.example")
		if n == 0 {
			t.Errorf("%s got no mail", addr)
		}
		if got.byMessageID[mid] != n {
			t.Errorf("%s got %d mails but its Message-ID %s was seen %d times", addr, n, mid, got.byMessageID[mid])
		}
		if n > 1 {
			repeats += n - 1
		}
	}
	if len(got.byRcpt) != members {
		t.Errorf("mail went to %d addresses, want the %d members'", len(got.byRcpt), members)
	}
	t.Logf("%d mails for %d members: %d sent twice (the bound is %d: %d workers × a batch of %d)",
		got.total, members, repeats, inFlight, workers, dispatch.DefaultBatch)
	if repeats > inFlight {
		t.Errorf("%d mails went twice, more than the %d that can be in flight at the kill", repeats, inFlight)
	}
	var left int
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM campaign_recipients WHERE run_id = $1 AND status <> 'sent'`, runID).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d recipients not recorded sent", left)
	}
}
