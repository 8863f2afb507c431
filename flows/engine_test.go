package flows

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/dispatch"
	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const testFrom = "Café Regular <club@cafe.example>"

// env is a database with a store, a register key and an SMTP test server.
type env struct {
	db    *models.DB
	smtp  *smtptest.Server
	till  *models.Principal
	cards atomic.Int64
	sales atomic.Int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	e := &env{db: db, smtp: smtptest.New(t)}
	if _, err := db.CreateStore(ctx, models.StoreInput{Code: "oslo-1", Name: "Oslo", Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}
	token, err := db.CreateAPIKey(ctx, models.RoleRegister, "oslo-1", "till-1")
	if err != nil {
		t.Fatal(err)
	}
	if e.till, err = db.Authenticate(ctx, token); err != nil {
		t.Fatal(err)
	}
	return e
}

// member inserts an active member with the given consent and returns its id and card.
func (e *env) member(t *testing.T, consent string) (int64, string) {
	t.Helper()
	n := e.cards.Add(1)
	card := models.WithCheckDigit(fmt.Sprintf("2%011d", n))
	var id int64
	if err := e.db.Pool.QueryRow(context.Background(), `
		INSERT INTO members (card, email, name, status, marketing_consent, source, home_store_id)
		VALUES ($1, 'kari' || $2::bigint || '@example.com', 'Kari Nordmann', 'active', $3, 'till',
		        (SELECT id FROM stores WHERE code = 'oslo-1'))
		RETURNING id`, card, n, consent).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id, card
}

// sale posts a sale through the till path (a live sale) occurred at at.
func (e *env) sale(t *testing.T, card string, at time.Time) {
	t.Helper()
	var in models.TransactionInput
	body := fmt.Sprintf(`{"id": "R-%d", "store": "oslo-1", "kind": "sale", "occurred_at": %q, "amount": 4500,
		"currency": "NOK", "member": {"card": %q}}`, e.sales.Add(1), at.UTC().Format(time.RFC3339), card)
	if err := json.Unmarshal([]byte(body), &in); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.db.RecordTransaction(context.Background(), e.till, in); err != nil {
		t.Fatal(err)
	}
}

// flow creates and activates a flow from its JSON.
func (e *env) flow(t *testing.T, body string) *Flow {
	t.Helper()
	ctx := context.Background()
	in, err := ParseInput([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Create(ctx, e.db, testFrom, in)
	if err != nil {
		t.Fatal(err)
	}
	if f, err = Activate(ctx, e.db, f.ID); err != nil {
		t.Fatal(err)
	}
	return f
}

// engine is an Engine without quiet hours or cap unless the test sets them.
func (e *env) engine() *Engine {
	return &Engine{DB: e.db, QuietStart: "00:00", QuietEnd: "00:00", Interval: 20 * time.Millisecond}
}

func (e *env) tick(t *testing.T, en *Engine) {
	t.Helper()
	if err := en.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (e *env) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// send runs a campaign sender until every queued flow mail is sent (or the deadline).
func (e *env) send(t *testing.T) {
	t.Helper()
	m, err := mailer.New(e.smtp.URL(), "", mailer.WithPoolSize(2), mailer.WithRetry(1, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := &dispatch.Sender{DB: e.db, Mail: m, BaseURL: "https://club.example", Secret: []byte("0123456789abcdef0123456789abcdef"),
		DefaultFrom: testFrom, Concurrency: 2, Batch: 5}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for e.count(t, `SELECT count(*) FROM campaign_recipients WHERE status IN ('queued', 'sending')`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("flow mails still queued after 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const welcome = `{"name": "Welcome", "trigger": {"event": "joined"},
	"steps": [{"mail": {"subject": "Welcome, {{.Member.FirstName}}", "text": "Your first coffee is on us.",
	                    "html": "<p>Your first coffee is on us. <a href=\"https://cafe.example/menu\">Menu</a></p>"}}]}`

// TestJoinedFiresOncePerMemberWithTwoReplicas: two engines tick the same flow at the same time,
// again and again; each member who confirms after activation enters once and gets one mail,
// with the campaign footer and one-click headers.
func TestJoinedFiresOncePerMemberWithTwoReplicas(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before, _ := e.member(t, "confirmed")
	if _, err := e.db.Pool.Exec(ctx, `UPDATE members SET confirmed_at = now() - interval '1 hour' WHERE id = $1`, before); err != nil {
		t.Fatal(err)
	}
	f := e.flow(t, welcome)
	var joined []int64
	for range 5 {
		id, _ := e.member(t, "confirmed")
		if _, err := e.db.Pool.Exec(ctx, `UPDATE members SET confirmed_at = now() WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		joined = append(joined, id)
	}
	a, b := e.engine(), e.engine()
	var wg sync.WaitGroup
	for _, en := range []*Engine{a, b} {
		wg.Go(func() {
			for range 5 {
				if err := en.Tick(ctx); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1`, f.ID); n != len(joined) {
		t.Errorf("%d entries, want %d (one per member who joined after activation)", n, len(joined))
	}
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND member_id = $2`, f.ID, before); n != 0 {
		t.Error("a member who joined before the flow was activated entered it")
	}
	e.send(t)
	if got := len(e.smtp.Messages()); got != len(joined) {
		t.Fatalf("%d mails, want %d", got, len(joined))
	}
	msg := strings.ReplaceAll(string(e.smtp.Messages()[0].Data), "=\r\n", "")
	for _, want := range []string{"Subject: Welcome, Kari", "List-Unsubscribe-Post: List-Unsubscribe=One-Click", "https://club.example/c/"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the mail has no %q:\n%s", want, msg)
		}
	}
	// Another round changes nothing: each trigger fired once.
	e.tick(t, a)
	e.tick(t, b)
	e.send(t)
	if got := len(e.smtp.Messages()); got != len(joined) {
		t.Errorf("%d mails after more ticks, want still %d", got, len(joined))
	}
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND status = 'done'`, f.ID); n != len(joined) {
		t.Errorf("%d entries done, want %d", n, len(joined))
	}
}

// TestPurchaseDuringWaitEndsTheFlowBeforeItsMail: the thank-you of a lapsed member's win-back
// never goes out when they bought while waiting for it.
func TestPurchaseDuringWaitEndsTheFlowBeforeItsMail(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	buyer, card := e.member(t, "confirmed")
	idle, card2 := e.member(t, "confirmed")
	e.sale(t, card, time.Now().Add(-90*24*time.Hour))
	e.sale(t, card2, time.Now().Add(-90*24*time.Hour))
	f := e.flow(t, `{"name": "Win back", "trigger": {"event": "lapsed", "days": 60},
		"steps": [{"wait": "72h"}, {"mail": {"subject": "We miss you", "text": "Come by."}}]}`)
	en := e.engine()
	e.tick(t, en)
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND status = 'active'`, f.ID); n != 2 {
		t.Fatalf("%d members waiting, want 2", n)
	}
	e.sale(t, card, time.Now())
	// The wait is over (moved back rather than waited for).
	if _, err := e.db.Pool.Exec(ctx, `UPDATE flow_entries SET next_at = now() WHERE flow_id = $1`, f.ID); err != nil {
		t.Fatal(err)
	}
	e.tick(t, en)
	e.send(t)
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND member_id = $2 AND exit_reason = 'purchase'`, f.ID, buyer); n != 1 {
		t.Error("the member who bought did not leave the flow by purchase")
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d mails, want one, to the member who did not buy", len(msgs))
	}
	var idleEmail string
	_ = e.db.Pool.QueryRow(ctx, `SELECT email FROM members WHERE id = $1`, idle).Scan(&idleEmail)
	if to := msgs[0].To; len(to) != 1 || to[0] != idleEmail {
		t.Errorf("mailed %v, want %s", to, idleEmail)
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients cr JOIN campaigns c ON c.id = (SELECT campaign_id FROM campaign_runs WHERE id = cr.run_id)
		WHERE c.flow_id = $1 AND cr.member_id = $2`, f.ID, buyer); n != 0 {
		t.Error("the member who bought was queued for the mail")
	}
}

// TestWithoutConsentNobodyEnters: members with no, pending or withdrawn consent, or whose
// address bounced for good, never enter; one who withdraws consent while waiting leaves.
func TestWithoutConsentNobodyEnters(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var cards []string
	for _, consent := range []string{"none", "pending", "withdrawn", "confirmed", "confirmed"} {
		_, card := e.member(t, consent)
		cards = append(cards, card)
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO email_suppressions (email, hard_bounces, suppressed_at)
		SELECT lower(email), 1, now() FROM members WHERE card = $1`, cards[3]); err != nil {
		t.Fatal(err)
	}
	f := e.flow(t, `{"name": "Thanks", "trigger": {"event": "first_purchase"},
		"steps": [{"wait": "24h"}, {"mail": {"subject": "Thank you", "text": "See you again."}}]}`)
	for _, c := range cards {
		e.sale(t, c, time.Now())
	}
	en := e.engine()
	e.tick(t, en)
	var entered []string
	rows, err := e.db.Pool.Query(ctx, `SELECT m.card FROM flow_entries e JOIN members m ON m.id = e.member_id WHERE e.flow_id = $1`, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		_ = rows.Scan(&c)
		entered = append(entered, c)
	}
	if len(entered) != 1 || entered[0] != cards[4] {
		t.Fatalf("entered %v, want only the mailable member %s", entered, cards[4])
	}
	if _, err := e.db.Pool.Exec(ctx, `UPDATE members SET marketing_consent = 'withdrawn' WHERE card = $1`, cards[4]); err != nil {
		t.Fatal(err)
	}
	// Members waiting are looked at every StateEvery (10 minutes); here, ten minutes later.
	if _, err := e.db.Pool.Exec(ctx, `UPDATE flows SET exits_checked_at = now() - interval '11 minutes' WHERE id = $1`, f.ID); err != nil {
		t.Fatal(err)
	}
	e.tick(t, en)
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND exit_reason = 'consent'`, f.ID); n != 1 {
		t.Error("the member who withdrew consent is still in the flow")
	}
}

// TestHoldoutIsStableAcrossRuns: a state trigger entering the same members again (a new
// metrics run, after reentry_days) puts each in the same group as before, and the held-out
// members walk the flow without mails.
func TestHoldoutIsStableAcrossRuns(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for range 60 {
		e.member(t, "confirmed")
	}
	var runID int64
	if err := e.db.Pool.QueryRow(ctx, `INSERT INTO metric_runs (as_of, timezone, window_days, churn_days, lifespan_cap_years, finished_at, status)
		VALUES (current_date - 10, 'UTC', 365, 90, 10, now(), 'done') RETURNING id`).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO member_metrics (member_id, run_id, as_of, orders_365d, spend_365d, p_alive)
		SELECT id, $1, current_date - 10, 1, 100, 0.1 FROM members`, runID); err != nil {
		t.Fatal(err)
	}
	f := e.flow(t, `{"name": "Slipping", "trigger": {"event": "p_alive_below", "value": 0.3}, "holdout_percent": 50,
		"reentry_days": 1, "steps": [{"mail": {"subject": "A coffee?", "text": "On us."}}]}`)
	en := e.engine()
	e.tick(t, en)
	first := map[int64]bool{}
	read := func(into map[int64]bool, key string) {
		rows, err := e.db.Pool.Query(ctx, `SELECT member_id, held_out FROM flow_entries WHERE flow_id = $1 AND event_key = $2`, f.ID, key)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var held bool
			_ = rows.Scan(&id, &held)
			into[id] = held
		}
	}
	var asOf string
	_ = e.db.Pool.QueryRow(ctx, `SELECT (current_date - 10)::text`).Scan(&asOf)
	read(first, "p_alive:"+asOf)
	held := 0
	for _, h := range first {
		if h {
			held++
		}
	}
	if len(first) != 60 || held < 15 || held > 45 {
		t.Fatalf("%d entered, %d held out; want 60 and about half", len(first), held)
	}
	e.send(t)
	if got := len(e.smtp.Messages()); got != 60-held {
		t.Errorf("%d mails, want %d (held-out members get none)", got, 60-held)
	}
	// A day later, a new metrics run: everyone enters again, each in the same group.
	if _, err := e.db.Pool.Exec(ctx, `UPDATE flow_entries SET entered_at = entered_at - interval '2 days' WHERE flow_id = $1;`, f.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `UPDATE member_metrics SET as_of = current_date - 9`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `UPDATE flows SET states_checked_at = NULL WHERE id = $1`, f.ID); err != nil {
		t.Fatal(err)
	}
	e.tick(t, en)
	second := map[int64]bool{}
	_ = e.db.Pool.QueryRow(ctx, `SELECT (current_date - 9)::text`).Scan(&asOf)
	read(second, "p_alive:"+asOf)
	if len(second) != 60 {
		t.Fatalf("%d entered again, want 60", len(second))
	}
	for id, h := range first {
		if second[id] != h {
			t.Errorf("member %d held out %v, then %v", id, h, second[id])
		}
	}
}

// TestCapAndQuietHoursMakeAMailWait: a member who had REGULARS_MAIL_CAP mails this week waits a
// day; quiet hours hold everyone until they end, in the home store's zone.
func TestCapAndQuietHoursMakeAMailWait(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	busy, busyCard := e.member(t, "confirmed")
	_, card := e.member(t, "confirmed")
	// Three campaign mails sent to busy this week.
	if _, err := e.db.Pool.Exec(ctx, `
		WITH c AS (INSERT INTO campaigns (name, subject, text) VALUES ('Old', 's', 't') RETURNING id),
		r AS (INSERT INTO campaign_runs (campaign_id, scheduled_for, status) SELECT id, now() - interval '1 day' * g, 'sent'
		      FROM c, generate_series(1, 3) g RETURNING id)
		INSERT INTO campaign_recipients (run_id, member_id, email, status, sent_at)
		SELECT r.id, $1, 'x@example.com', 'sent', now() - interval '2 days' FROM r`, busy); err != nil {
		t.Fatal(err)
	}
	f := e.flow(t, `{"name": "Thanks", "trigger": {"event": "first_purchase"},
		"steps": [{"mail": {"subject": "Thank you", "text": "See you again."}}]}`)
	e.sale(t, busyCard, time.Now())
	e.sale(t, card, time.Now())
	en := e.engine()
	en.MailCap = 3
	// Quiet all day but the current minute's neighbourhood is excluded: start an hour ago, end
	// in an hour, in Oslo.
	oslo, _ := time.LoadLocation("Europe/Oslo")
	now := time.Now().In(oslo)
	en.QuietStart, en.QuietEnd = now.Add(-time.Hour).Format("15:04"), now.Add(time.Hour).Format("15:04")
	e.tick(t, en)
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients cr JOIN campaign_runs r ON r.id = cr.run_id
		JOIN campaigns c ON c.id = r.campaign_id WHERE c.flow_id = $1`, f.ID); n != 0 {
		t.Fatalf("%d flow mails queued during quiet hours", n)
	}
	var wait time.Duration
	if err := e.db.Pool.QueryRow(ctx, `SELECT max(next_at) - now() FROM flow_entries WHERE flow_id = $1 AND member_id <> $2`, f.ID, busy).Scan(&wait); err != nil {
		t.Fatal(err)
	}
	if wait < 55*time.Minute || wait > 61*time.Minute {
		t.Errorf("the quiet member waits %v, want about an hour (the end of quiet hours)", wait)
	}
	// Quiet hours off: the capped member waits a day, the other is queued.
	en.QuietStart, en.QuietEnd = "00:00", "00:00"
	if _, err := e.db.Pool.Exec(ctx, `UPDATE flow_entries SET next_at = now() WHERE flow_id = $1`, f.ID); err != nil {
		t.Fatal(err)
	}
	e.tick(t, en)
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients cr JOIN campaign_runs r ON r.id = cr.run_id
		JOIN campaigns c ON c.id = r.campaign_id WHERE c.flow_id = $1`, f.ID); n != 1 {
		t.Errorf("%d flow mails queued, want 1 (the member under the cap)", n)
	}
	if err := e.db.Pool.QueryRow(ctx, `SELECT next_at - now() FROM flow_entries WHERE flow_id = $1 AND member_id = $2`, f.ID, busy).Scan(&wait); err != nil {
		t.Fatal(err)
	}
	if wait < 23*time.Hour || wait > 25*time.Hour {
		t.Errorf("the capped member waits %v, want a day", wait)
	}
}

// TestImportedHistoryStartsNoFlow: sales loaded by an import are history, not events; a till's
// offline batch uploaded late is an event.
func TestImportedHistoryStartsNoFlow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, card := e.member(t, "confirmed")
	offline, offlineCard := e.member(t, "confirmed")
	f := e.flow(t, `{"name": "Thanks", "trigger": {"event": "first_purchase"},
		"steps": [{"mail": {"subject": "Thank you", "text": "See you again."}}]}`)
	csv := "id,store,register,kind,occurred_at,amount,currency,member_card,member_email\nH-1,oslo-1,,sale," +
		time.Now().Add(-72*time.Hour).UTC().Format(time.RFC3339) + ",4500,NOK," + card + ",\n"
	if _, err := e.db.ImportTransactionsCSV(ctx, strings.NewReader(csv)); err != nil {
		t.Fatal(err)
	}
	e.tick(t, e.engine())
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1`, f.ID); n != 0 {
		t.Errorf("an imported sale started the flow (%d entries)", n)
	}
	// The imported sale came first, so a later one is not the first purchase; a till's offline
	// sale of two days ago, uploaded now, is the other member's first.
	e.sale(t, card, time.Now().Add(-48*time.Hour))
	e.sale(t, offlineCard, time.Now().Add(-48*time.Hour))
	e.tick(t, e.engine())
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1`, f.ID); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND member_id = $2`, f.ID, offline); n != 1 {
		t.Error("the late offline first purchase did not start the flow")
	}
}
