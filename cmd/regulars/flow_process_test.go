package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/dispatch"
	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/models/dbtest"
)

// TestFlowWithTwoServeProcessesAndSIGKILL is the flow issue's process test: a welcome flow run
// by two serve processes on one database, each with its own SMTP server. 1,000 members join
// after activation (and 100 without consent); one process is killed with SIGKILL in the middle
// of sending. Every consenting member enters once and gets the mail; nobody without consent
// does; mails sent twice stay within what the dead process could have had in flight.
func TestFlowWithTwoServeProcessesAndSIGKILL(t *testing.T) {
	const members, workers = 1000, 2
	const inFlight = workers * dispatch.DefaultBatch
	dbURL := dbtest.URL(t)
	db := openTestDB(t, dbURL)
	execSQL(t, db, `
		INSERT INTO members (card, email, name, status, marketing_consent, source)
		SELECT lpad(g::text, 13, '0'), 'member.' || g || '@example.com', 'Member ' || g, 'active',
			CASE WHEN g <= $1 THEN 'confirmed' ELSE 'withdrawn' END, 'till'
		FROM generate_series(1, $1 + 100) g`, members)
	sinks := []*smtptest.Server{smtptest.New(t), smtptest.New(t)}
	var servers []*server
	for _, sink := range sinks {
		servers = append(servers, startServe(t, campaignEnv(t, dbURL, sink,
			fmt.Sprintf("REGULARS_SEND_CONCURRENCY=%d", workers), "REGULARS_SEND_RATE=100",
			"REGULARS_QUIET_START=00:00", "REGULARS_QUIET_END=00:00", "REGULARS_MAIL_CAP=0")))
	}
	env := campaignEnv(t, dbURL, sinks[0])
	marketer := newAPIClient(servers[0].base, createKey(t, env, "--role", "marketer", "--name", "flows"))
	var f struct{ ID int64 }
	if err := json.Unmarshal(marketer.mustDo(t, http.MethodPost, "/api/v1/flows", map[string]any{
		"name": "Welcome", "trigger": map[string]any{"event": "joined"},
		"steps": []any{map[string]any{"mail": map[string]any{"subject": "Welcome, {{.Member.FirstName}}",
			"html": `<p>Your first coffee is on us. <a href="https://shop.example/menu">Menu</a></p>`, "text": "Your first coffee is on us."}}},
	}, http.StatusCreated), &f); err != nil {
		t.Fatal(err)
	}
	marketer.mustDo(t, http.MethodPost, fmt.Sprintf("/api/v1/flows/%d/activate", f.ID), nil, http.StatusOK)
	// They join now: consent confirmed after activation (the withdrawn ones too, as if they
	// had confirmed and withdrawn since).
	execSQL(t, db, `UPDATE members SET confirmed_at = now()`)

	deadline := time.Now().Add(2 * time.Minute)
	for sinks[0].Count()+sinks[1].Count() < 300 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d mails after 2 minutes", sinks[0].Count()+sinks[1].Count())
		}
		time.Sleep(5 * time.Millisecond)
	}
	servers[0].signal(syscall.SIGKILL)
	if !servers[0].waitExit(30 * time.Second) {
		t.Fatal("serve did not die of SIGKILL")
	}
	t.Logf("killed one process with %d + %d mails received", sinks[0].Count(), sinks[1].Count())

	// The survivor sends the rest, the dead one's claims after their lease (30 s).
	deadline = time.Now().Add(3 * time.Minute)
	for {
		var open, active int
		if err := db.Pool.QueryRow(context.Background(), `
			SELECT (SELECT count(*) FROM campaign_recipients WHERE status IN ('queued', 'sending')),
			       (SELECT count(*) FROM flow_entries WHERE status = 'active')`).Scan(&open, &active); err != nil {
			t.Fatal(err)
		}
		if open == 0 && active == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d flow mails still queued and %d members on their way after 3 minutes", open, active)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var entries, distinct int
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*), count(DISTINCT member_id) FROM flow_entries WHERE flow_id = $1`, f.ID).Scan(&entries, &distinct); err != nil {
		t.Fatal(err)
	}
	if entries != members || distinct != members {
		t.Errorf("%d entries of %d members, want %d of %d", entries, distinct, members, members)
	}
	got := countMail(t, sinks...)
	repeats := 0
	for g := 1; g <= members+100; g++ {
		n := got.byRcpt[fmt.Sprintf("member.%d@example.com", g)]
		switch {
		case g <= members && n == 0:
			t.Errorf("member %d got no mail", g)
		case g > members && n > 0:
			t.Errorf("member %d, without consent, got %d mails", g, n)
		case n > 1:
			repeats += n - 1
		}
	}
	t.Logf("%d mails for %d members: %d sent twice (the bound is %d)", got.total, members, repeats, inFlight)
	if repeats > inFlight {
		t.Errorf("%d mails went twice, more than the %d the dead process could have had in flight", repeats, inFlight)
	}
	if sinks[1].Count() == 0 {
		t.Error("the second process sent nothing: the work was not shared")
	}
}
