package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const testFrom = "Vinyl shop <news@shop.example>"

// env is a database with a fixed clock, an SMTP test server and one segment: the members
// whose address is at example.com.
type env struct {
	db        *models.DB
	smtp      *smtptest.Server
	base      time.Time
	segmentID int64
	cards     atomic.Int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := dbtest.New(t)
	e := &env{db: db, smtp: smtptest.New(t), base: time.Now().UTC().Truncate(time.Second)}
	db.Now = func() time.Time { return e.base }
	if err := db.Pool.QueryRow(context.Background(), `INSERT INTO segments (name, rules)
		VALUES ('example.com', '{"field": "email_domain", "op": "eq", "value": "example.com"}') RETURNING id`).
		Scan(&e.segmentID); err != nil {
		t.Fatal(err)
	}
	return e
}

// addMembers inserts n members with addresses <prefix><i>@<domain> and returns their ids.
func (e *env) addMembers(t *testing.T, n int, prefix, domain, status, consent string) []int64 {
	t.Helper()
	first := e.cards.Add(int64(n)) - int64(n)
	rows, err := e.db.Pool.Query(context.Background(), `
		INSERT INTO members (card, email, name, status, marketing_consent, source)
		SELECT lpad(($1 + g)::text, 13, '0'), $2 || g || '@' || $3, 'Kari ' || $2 || g, $4, $5, 'till'
		FROM generate_series(1, $6) g
		RETURNING id`, first, prefix, domain, status, consent, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// campaign creates a campaign for the segment and schedules it a minute after the clock.
func (e *env) campaign(t *testing.T, holdout float64) int64 {
	t.Helper()
	ctx := context.Background()
	name, subject, text, html := "November", "Hi {{.Member.FirstName}}", "New records are in, {{.Member.Name}}.",
		`<p>New records are in: <a href="https://shop.example/records">see them</a>.</p>`
	seg := e.segmentID
	c, err := campaigns.Create(ctx, e.db, testFrom, campaigns.Input{Name: &name, Subject: &subject, Text: &text,
		HTML: &html, SegmentID: &seg, HoldoutPercent: &holdout})
	if err != nil {
		t.Fatal(err)
	}
	at := e.base.Add(time.Minute)
	if _, err := Schedule(ctx, e.db, c.ID, ScheduleInput{SendAt: &at}); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// htmlCampaign creates a campaign called name with an HTML body for the segment, no holdout,
// and schedules it a minute after the clock.
func (e *env) htmlCampaign(t *testing.T, name, html string) int64 {
	t.Helper()
	ctx := context.Background()
	subject, seg, holdout := "Hi", e.segmentID, 0.0
	c, err := campaigns.Create(ctx, e.db, testFrom, campaigns.Input{Name: &name, Subject: &subject,
		HTML: &html, SegmentID: &seg, HoldoutPercent: &holdout})
	if err != nil {
		t.Fatal(err)
	}
	at := e.base.Add(time.Minute)
	if _, err := Schedule(ctx, e.db, c.ID, ScheduleInput{SendAt: &at}); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// dispatcher is a Dispatcher two minutes after the clock, so one-off campaigns are due.
func (e *env) dispatcher() *Dispatcher {
	return &Dispatcher{DB: e.db, Now: func() time.Time { return e.base.Add(2 * time.Minute) }, Interval: 50 * time.Millisecond}
}

// sender is a Sender with its own pooled SMTP mailer that does not retry by itself.
func (e *env) sender(t *testing.T, concurrency int, rate float64) *Sender {
	t.Helper()
	m, err := mailer.New(e.smtp.URL(), "", mailer.WithPoolSize(concurrency), mailer.WithRetry(1, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return &Sender{DB: e.db, Mail: m, BaseURL: "https://club.example", Secret: []byte("0123456789abcdef0123456789abcdef"),
		DefaultFrom: testFrom, Concurrency: concurrency, Rate: rate, Batch: 5,
		RetryDelays: []time.Duration{50 * time.Millisecond, 50 * time.Millisecond}}
}

// start runs the dispatchers and senders until the test ends (or stop is called).
func start(t *testing.T, ds []*Dispatcher, ss []*Sender) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() { d.Run(ctx) })
	}
	for _, s := range ss {
		wg.Go(func() { s.Run(ctx) })
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) runStatus(t *testing.T, campaignID int64) string {
	t.Helper()
	var status string
	err := e.db.Pool.QueryRow(context.Background(),
		`SELECT coalesce(max(status), '') FROM campaign_runs WHERE campaign_id = $1`, campaignID).Scan(&status)
	if err != nil {
		t.Fatal(err)
	}
	return status
}

func (e *env) campaignStatus(t *testing.T, id int64) string {
	t.Helper()
	c, err := campaigns.Get(context.Background(), e.db, id)
	if err != nil {
		t.Fatal(err)
	}
	return c.Status
}

func (e *env) count(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// received counts the mails per recipient address.
func (e *env) received() map[string]int {
	out := map[string]int{}
	for _, m := range e.smtp.Messages() {
		for _, to := range m.To {
			out[to]++
		}
	}
	return out
}

// exactlyOnce checks that every address of want got one mail and nobody else got any.
func exactlyOnce(t *testing.T, got map[string]int, want map[string]bool) {
	t.Helper()
	for addr, n := range got {
		switch {
		case !want[addr]:
			t.Errorf("%s got %d mail(s) and should have got none", addr, n)
		case n != 1:
			t.Errorf("%s got %d mails, want exactly 1", addr, n)
		}
	}
	for addr := range want {
		if got[addr] == 0 {
			t.Errorf("%s got no mail", addr)
		}
	}
}

func addresses(prefix, domain string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d@%s", prefix, i+1, domain)
	}
	return out
}

func TestOneOffCampaignMailsEachMailableMemberOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.addMembers(t, 200, "ok", "example.com", "active", "confirmed")
	e.addMembers(t, 20, "pending", "example.com", "pending", "confirmed")
	e.addMembers(t, 20, "noconsent", "example.com", "active", "none")
	e.addMembers(t, 20, "askedconsent", "example.com", "active", "pending")
	e.addMembers(t, 20, "withdrawn", "example.com", "active", "withdrawn")
	e.addMembers(t, 20, "erased", "example.com", "erased", "confirmed")
	e.addMembers(t, 20, "bounced", "example.com", "active", "confirmed")
	e.addMembers(t, 10, "softbounce", "example.com", "active", "confirmed")
	e.addMembers(t, 20, "elsewhere", "other.example", "active", "confirmed")
	// Suppressed addresses are stored lower-case; the member's may be written in any case.
	if _, err := e.db.Pool.Exec(ctx, `UPDATE members SET email = upper(email) WHERE email LIKE 'bounced1%'`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `
		INSERT INTO email_suppressions (email, hard_bounces, soft_bounces, suppressed_at)
		SELECT lower(email), 1, 0, now() FROM members WHERE lower(email) LIKE 'bounced%'
		UNION ALL
		SELECT lower(email), 0, 1, NULL FROM members WHERE email LIKE 'softbounce%'`); err != nil {
		t.Fatal(err)
	}
	id := e.campaign(t, 10)

	d := e.dispatcher()
	// Not due yet at the clock's time.
	early := &Dispatcher{DB: e.db}
	if err := early.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_runs`); n != 0 {
		t.Fatalf("%d runs before send_at", n)
	}
	if err := d.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.campaignStatus(t, id); got != "sending" {
		t.Errorf("campaign is %s after its run started, want sending", got)
	}
	var runID, recipients, heldOut int64
	if err := e.db.Pool.QueryRow(ctx, `SELECT id, recipients, held_out FROM campaign_runs WHERE campaign_id = $1`, id).
		Scan(&runID, &recipients, &heldOut); err != nil {
		t.Fatal(err)
	}
	if recipients+heldOut != 210 {
		t.Errorf("run has %d recipients and %d held out, want 210 in all", recipients, heldOut)
	}
	// 10 % of 210, give or take the hash.
	if heldOut < 8 || heldOut > 40 {
		t.Errorf("%d of 210 held out at 10 %%", heldOut)
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE held_out AND status = 'held_out'`); n != heldOut {
		t.Errorf("%d held_out rows, run says %d", n, heldOut)
	}
	// A second tick (another replica) creates and snapshots nothing more.
	if err := e.dispatcher().Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients`); n != 210 {
		t.Errorf("%d recipient rows after a second tick, want 210", n)
	}

	start(t, []*Dispatcher{d}, []*Sender{e.sender(t, 4, 0)})
	waitFor(t, "the campaign to be sent", 30*time.Second, func() bool { return e.campaignStatus(t, id) == "sent" })
	if got := e.runStatus(t, id); got != "sent" {
		t.Errorf("run is %s, want sent", got)
	}

	heldRows, err := e.db.Pool.Query(ctx, `SELECT email FROM campaign_recipients WHERE held_out`)
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]bool{}
	for heldRows.Next() {
		var addr string
		if err := heldRows.Scan(&addr); err != nil {
			t.Fatal(err)
		}
		held[addr] = true
	}
	want := map[string]bool{}
	for _, a := range append(addresses("ok", "example.com", 200), addresses("softbounce", "example.com", 10)...) {
		if !held[a] {
			want[a] = true
		}
	}
	exactlyOnce(t, e.received(), want)
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE status = 'sent' AND sent_at IS NOT NULL`); n != recipients {
		t.Errorf("%d recipients recorded sent, want %d", n, recipients)
	}

	msgs := e.smtp.Messages()
	if len(msgs) == 0 {
		t.FailNow()
	}
	h := msgs[0].Header
	var memberID int64
	if err := e.db.Pool.QueryRow(ctx, `SELECT id FROM members WHERE email = $1`, msgs[0].To[0]).Scan(&memberID); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("<run-%d.member-%d@shop.example>", runID, memberID); h.Get("Message-Id") != want {
		t.Errorf("Message-ID %q, want %q", h.Get("Message-Id"), want)
	}
	if lu := h.Get("List-Unsubscribe"); !strings.Contains(lu, "https://club.example/unsubscribe?token=") {
		t.Errorf("List-Unsubscribe %q", lu)
	}
	// The campaign's link is a signed click-tracking redirect; the footer's club links are not.
	body := strings.ReplaceAll(string(msgs[0].Data), "=\r\n", "")
	if !strings.Contains(body, "https://club.example/c/") || strings.Contains(body, `"https://shop.example/records"`) {
		t.Errorf("the campaign link was not rewritten for click tracking:\n%s", body)
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_links WHERE url = 'https://shop.example/records'`); n != 1 {
		t.Errorf("%d campaign_links rows for the link, want 1", n)
	}
	if !strings.HasPrefix(h.Get("Subject"), "Hi Kari") {
		t.Errorf("subject %q not rendered for the member", h.Get("Subject"))
	}
}

func TestMembersWhoLeaveAfterTheSnapshotAreNotMailed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.addMembers(t, 10, "ok", "example.com", "active", "confirmed")
	id := e.campaign(t, 0)
	d := e.dispatcher()
	if err := d.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	// After the snapshot, one member withdraws consent and another's address hard-bounces.
	if _, err := e.db.Pool.Exec(ctx, `UPDATE members SET marketing_consent = 'withdrawn' WHERE email = 'ok1@example.com'`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO email_suppressions (email, hard_bounces, suppressed_at) VALUES ('ok2@example.com', 1, now())`); err != nil {
		t.Fatal(err)
	}
	start(t, []*Dispatcher{d}, []*Sender{e.sender(t, 2, 0)})
	waitFor(t, "the campaign to be sent", 30*time.Second, func() bool { return e.campaignStatus(t, id) == "sent" })
	want := map[string]bool{}
	for _, a := range addresses("ok", "example.com", 10)[2:] {
		want[a] = true
	}
	exactlyOnce(t, e.received(), want)
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE status = 'failed' AND error LIKE 'no longer mailable%'`); n != 2 {
		t.Errorf("%d recipients failed as no longer mailable, want 2", n)
	}
}

func TestTemporaryFailuresAreRetriedAndPermanentOnesFail(t *testing.T) {
	e := newEnv(t)
	e.addMembers(t, 20, "ok", "example.com", "active", "confirmed")
	e.smtp.FailRcpt(3, 451)
	e.smtp.FailRcpt(2, 550)
	id := e.campaign(t, 0)
	start(t, []*Dispatcher{e.dispatcher()}, []*Sender{e.sender(t, 1, 0)})
	waitFor(t, "the campaign to be sent", 30*time.Second, func() bool { return e.campaignStatus(t, id) == "sent" })

	got := e.received()
	if len(got) != 18 {
		t.Errorf("%d addresses got mail, want 18", len(got))
	}
	for addr, n := range got {
		if n != 1 {
			t.Errorf("%s got %d mails", addr, n)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE status = 'failed' AND error LIKE '%550%' AND attempts = 1`); n != 2 {
		t.Errorf("%d recipients failed with 550 after one attempt, want 2", n)
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE status = 'sent' AND attempts = 2 AND error IS NULL`); n != 3 {
		t.Errorf("%d recipients sent on the second attempt, want 3", n)
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE status = 'sent'`); n != 18 {
		t.Errorf("%d recipients sent, want 18", n)
	}
}

func TestTemporaryFailuresGiveUpAfterTheLastAttempt(t *testing.T) {
	e := newEnv(t)
	e.addMembers(t, 1, "ok", "example.com", "active", "confirmed")
	e.smtp.FailRcpt(3, 421)
	id := e.campaign(t, 0)
	start(t, []*Dispatcher{e.dispatcher()}, []*Sender{e.sender(t, 1, 0)})
	waitFor(t, "the campaign to be sent", 30*time.Second, func() bool { return e.campaignStatus(t, id) == "sent" })
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE status = 'failed' AND attempts = 3`); n != 1 {
		t.Errorf("the recipient did not fail after 3 attempts")
	}
	if n := e.smtp.Count(); n != 0 {
		t.Errorf("%d mails delivered", n)
	}
}

func TestTwoInstancesSendEachMailOnce(t *testing.T) {
	e := newEnv(t)
	e.addMembers(t, 300, "ok", "example.com", "active", "confirmed")
	id := e.campaign(t, 0)
	s1, s2 := e.sender(t, 3, 0), e.sender(t, 3, 0)
	start(t, []*Dispatcher{e.dispatcher(), e.dispatcher()}, []*Sender{s1, s2})
	waitFor(t, "the campaign to be sent", 60*time.Second, func() bool { return e.campaignStatus(t, id) == "sent" })
	want := map[string]bool{}
	for _, a := range addresses("ok", "example.com", 300) {
		want[a] = true
	}
	exactlyOnce(t, e.received(), want)
	if n := e.count(t, `SELECT count(*) FROM campaign_runs`); n != 1 {
		t.Errorf("%d runs, want 1", n)
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE attempts <> 1`); n != 0 {
		t.Errorf("%d recipients claimed more than once", n)
	}
}

func TestLeaseExpiredRecipientsAreSentAgain(t *testing.T) {
	// The crash rule: a recipient left 'sending' by a dead process is sent once its lease ends.
	e := newEnv(t)
	ctx := context.Background()
	e.addMembers(t, 10, "ok", "example.com", "active", "confirmed")
	id := e.campaign(t, 0)
	if err := e.dispatcher().Tick(ctx); err != nil {
		t.Fatal(err)
	}
	// A process claimed three and died; one lease has not expired yet.
	if _, err := e.db.Pool.Exec(ctx, `
		UPDATE campaign_recipients SET status = 'sending', attempts = 1, lease_until = now() - interval '1 second'
		WHERE member_id IN (SELECT member_id FROM campaign_recipients ORDER BY member_id LIMIT 2)`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `
		UPDATE campaign_recipients SET status = 'sending', attempts = 1, lease_until = now() + interval '3 seconds'
		WHERE member_id = (SELECT max(member_id) FROM campaign_recipients)`); err != nil {
		t.Fatal(err)
	}
	start(t, []*Dispatcher{e.dispatcher()}, []*Sender{e.sender(t, 2, 0)})
	waitFor(t, "9 mails", 10*time.Second, func() bool { return e.smtp.Count() >= 9 })
	if e.campaignStatus(t, id) == "sent" {
		t.Errorf("campaign sent while a recipient's lease was still running")
	}
	waitFor(t, "the campaign to be sent", 10*time.Second, func() bool { return e.campaignStatus(t, id) == "sent" })
	want := map[string]bool{}
	for _, a := range addresses("ok", "example.com", 10) {
		want[a] = true
	}
	exactlyOnce(t, e.received(), want)
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE attempts = 2`); n != 3 {
		t.Errorf("%d recipients on their second attempt, want the 3 that were in flight", n)
	}
}

func TestLeaseIsRenewedWhileSendingSlowly(t *testing.T) {
	// The slow sender holds a batch for far longer than the lease; its heartbeat keeps the fast
	// sender from taking over mails that are still being worked on.
	e := newEnv(t)
	e.addMembers(t, 30, "ok", "example.com", "active", "confirmed")
	id := e.campaign(t, 0)
	slow, fast := e.sender(t, 1, 5), e.sender(t, 1, 0)
	slow.Batch, slow.Lease, fast.Lease = 10, 300*time.Millisecond, 300*time.Millisecond
	start(t, []*Dispatcher{e.dispatcher()}, []*Sender{slow})
	waitFor(t, "the first mail", 10*time.Second, func() bool { return e.smtp.Count() >= 1 })
	start(t, nil, []*Sender{fast})
	waitFor(t, "the campaign to be sent", 30*time.Second, func() bool { return e.campaignStatus(t, id) == "sent" })
	want := map[string]bool{}
	for _, a := range addresses("ok", "example.com", 30) {
		want[a] = true
	}
	exactlyOnce(t, e.received(), want)
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE attempts <> 1`); n != 0 {
		t.Errorf("%d recipients claimed twice", n)
	}
}

// sendingSlowly starts a slow campaign of n mails and waits until some are out.
func sendingSlowly(t *testing.T, e *env, n int) (int64, func()) {
	t.Helper()
	e.addMembers(t, n, "ok", "example.com", "active", "confirmed")
	id := e.campaign(t, 0)
	stop := start(t, []*Dispatcher{e.dispatcher()}, []*Sender{e.sender(t, 2, 20)})
	waitFor(t, "the first mails", 10*time.Second, func() bool { return e.smtp.Count() >= 10 })
	return id, stop
}

func TestPauseStopsWithinTwoSecondsAndResumeFinishes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, _ := sendingSlowly(t, e, 60)
	c, err := Pause(ctx, e.db, id)
	if err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	if c.Status != "paused" {
		t.Errorf("paused campaign is %s", c.Status)
	}
	atPause := e.smtp.Count()
	time.Sleep(time.Until(paused.Add(2 * time.Second)))
	afterTwo := e.smtp.Count()
	time.Sleep(time.Second)
	later := e.smtp.Count()
	t.Logf("mails: %d at pause, %d at pause+2s, %d at pause+3s", atPause, afterTwo, later)
	if later != afterTwo {
		t.Errorf("%d mails went out later than 2 s after the pause", later-afterTwo)
	}
	if later >= 60 {
		t.Fatalf("every mail went out despite the pause")
	}
	if got := e.runStatus(t, id); got != "paused" {
		t.Errorf("run is %s, want paused", got)
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE status = 'sending'`); n != 0 {
		t.Errorf("%d recipients still claimed after the pause, want them back in the queue", n)
	}
	if _, err := Schedule(ctx, e.db, id, ScheduleInput{SendAt: ptr(e.base.Add(time.Hour))}); models.ErrorCode(err) != models.ECONFLICT {
		t.Errorf("rescheduling a campaign paused mid-run: %v, want a conflict", err)
	}

	c, err = Resume(ctx, e.db, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != "sending" {
		t.Errorf("resumed campaign is %s, want sending", c.Status)
	}
	waitFor(t, "the campaign to be sent", 30*time.Second, func() bool { return e.campaignStatus(t, id) == "sent" })
	want := map[string]bool{}
	for _, a := range addresses("ok", "example.com", 60) {
		want[a] = true
	}
	exactlyOnce(t, e.received(), want)
}

func TestCancelStopsSending(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, stop := sendingSlowly(t, e, 60)
	c, err := Cancel(ctx, e.db, id)
	if err != nil {
		t.Fatal(err)
	}
	cancelled := time.Now()
	if c.Status != "cancelled" {
		t.Errorf("cancelled campaign is %s", c.Status)
	}
	time.Sleep(time.Until(cancelled.Add(2 * time.Second)))
	afterTwo := e.smtp.Count()
	time.Sleep(time.Second)
	if later := e.smtp.Count(); later != afterTwo {
		t.Errorf("%d mails went out later than 2 s after the cancel", later-afterTwo)
	}
	stop()
	if got := e.runStatus(t, id); got != "cancelled" {
		t.Errorf("run is %s, want cancelled", got)
	}
	sent := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE status = 'sent'`)
	queued := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE status = 'queued'`)
	if sent != int64(afterTwo) || sent+queued != 60 || queued == 0 {
		t.Errorf("after the cancel: %d sent (%d mails), %d queued; want the unsent ones left queued", sent, afterTwo, queued)
	}
	for addr, n := range e.received() {
		if n != 1 {
			t.Errorf("%s got %d mails", addr, n)
		}
	}
	if _, err := Cancel(ctx, e.db, id); models.ErrorCode(err) != models.ECONFLICT {
		t.Errorf("cancelling twice: %v, want a conflict", err)
	}
	if _, err := Resume(ctx, e.db, id); models.ErrorCode(err) != models.ECONFLICT {
		t.Errorf("resuming a cancelled campaign: %v, want a conflict", err)
	}
}

func TestRateLimit(t *testing.T) {
	// The requirement: the configured rate is held within 10 %. 100 mails at 50 a
	// second are 99 gaps of 20 ms after the first.
	e := newEnv(t)
	e.addMembers(t, 100, "ok", "example.com", "active", "confirmed")
	id := e.campaign(t, 0)
	d := e.dispatcher()
	if err := d.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	start(t, []*Dispatcher{d}, []*Sender{e.sender(t, 4, 50)})
	waitFor(t, "100 mails", 20*time.Second, func() bool { return e.smtp.Count() >= 100 })
	took := time.Since(began)
	t.Logf("100 mails at 50/s took %v", took)
	// Held: never more than 10 % faster than the rate. A slower send is the machine (shared
	// cores, the race detector), not the limit giving way, so the upper bound only catches a
	// limiter that waits far too long.
	if want := 1980 * time.Millisecond; took < want*9/10 || took > want*2 {
		t.Errorf("100 mails at 50/s took %v, want at least %v (the rate + 10 %%) and well under %v", took, want*9/10, want*2)
	}
	waitFor(t, "the campaign to be sent", 10*time.Second, func() bool { return e.campaignStatus(t, id) == "sent" })
	if e.smtp.Connections() > 4 {
		t.Errorf("%d SMTP connections for 4 workers: connections are not reused", e.smtp.Connections())
	}
}

func ptr[T any](v T) *T { return &v }

func TestRecurringRunsFireAtLocalTimeAcrossDST(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	e.base = time.Date(2026, 3, 27, 12, 0, 0, 0, oslo)
	e.addMembers(t, 3, "ok", "example.com", "active", "confirmed")
	name, subject, text := "Daily", "Good morning", "Hello"
	seg := e.segmentID
	c, err := campaigns.Create(ctx, e.db, testFrom, campaigns.Input{Name: &name, Subject: &subject, Text: &text, SegmentID: &seg})
	if err != nil {
		t.Fatal(err)
	}
	c, err = Schedule(ctx, e.db, c.ID, ScheduleInput{Cron: ptr("0 9 * * *"), Timezone: ptr("Europe/Oslo")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != "scheduled" || c.Cron == nil || *c.Cron != "0 9 * * *" || *c.Timezone != "Europe/Oslo" {
		t.Fatalf("scheduled campaign %+v", c)
	}
	var now time.Time
	d := &Dispatcher{DB: e.db, Now: func() time.Time { return now }}
	runs := func() []string {
		rows, err := e.db.Pool.Query(ctx, `SELECT scheduled_for FROM campaign_runs WHERE campaign_id = $1 ORDER BY 1`, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var at time.Time
			if err := rows.Scan(&at); err != nil {
				t.Fatal(err)
			}
			out = append(out, at.In(oslo).Format("2006-01-02 15:04 MST"))
		}
		return out
	}
	ticks := []struct {
		at   time.Time
		want string // the runs after the tick
	}{
		{time.Date(2026, 3, 28, 8, 59, 59, 0, oslo), ""},
		{time.Date(2026, 3, 28, 9, 0, 1, 0, oslo), "2026-03-28 09:00 CET"},
		{time.Date(2026, 3, 28, 9, 30, 0, 0, oslo), "2026-03-28 09:00 CET"},
		// The clocks go forward at 02:00 on 29 March: 09:00 is now 07:00 UTC, not 08:00.
		{time.Date(2026, 3, 29, 8, 59, 0, 0, oslo), "2026-03-28 09:00 CET"},
		{time.Date(2026, 3, 29, 9, 0, 2, 0, oslo), "2026-03-28 09:00 CET,2026-03-29 09:00 CEST"},
		// Found more than an hour late (every server was down): skipped, not sent late.
		{time.Date(2026, 3, 30, 10, 30, 0, 0, oslo), "2026-03-28 09:00 CET,2026-03-29 09:00 CEST"},
		// The clocks go back at 03:00 on 25 October: 09:00 is 08:00 UTC again.
		{time.Date(2026, 10, 24, 9, 0, 5, 0, oslo), "2026-03-28 09:00 CET,2026-03-29 09:00 CEST,2026-10-24 09:00 CEST"},
		{time.Date(2026, 10, 25, 9, 0, 5, 0, oslo), "2026-03-28 09:00 CET,2026-03-29 09:00 CEST,2026-10-24 09:00 CEST,2026-10-25 09:00 CET"},
	}
	for _, tick := range ticks {
		now = tick.at
		if err := d.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(runs(), ","); got != tick.want {
			t.Errorf("after a tick at %s: runs %q, want %q", tick.at.Format(time.RFC3339), got, tick.want)
		}
	}
	var utc []string
	rows, err := e.db.Pool.Query(ctx, `SELECT to_char(scheduled_for AT TIME ZONE 'UTC', 'MM-DD HH24:MI') FROM campaign_runs ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		utc = append(utc, s)
	}
	rows.Close()
	if got, want := strings.Join(utc, ","), "03-28 08:00,03-29 07:00,10-24 07:00,10-25 08:00"; got != want {
		t.Errorf("runs in UTC %s, want %s", got, want)
	}
	// Every run snapshotted its three members and, with nobody sending them, is still sending;
	// the recurring campaign stays sending until they are done, then is scheduled again.
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients`); n != 12 {
		t.Errorf("%d recipients over 4 runs, want 12", n)
	}
	if got := e.campaignStatus(t, c.ID); got != "sending" {
		t.Errorf("campaign is %s while runs are sending", got)
	}
	if _, err := e.db.Pool.Exec(ctx, `UPDATE campaign_recipients SET status = 'sent', sent_at = now()`); err != nil {
		t.Fatal(err)
	}
	if err := d.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.campaignStatus(t, c.ID); got != "scheduled" {
		t.Errorf("recurring campaign is %s after its runs were sent, want scheduled", got)
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_runs WHERE status = 'sent' AND finished_at IS NOT NULL`); n != 4 {
		t.Errorf("%d runs sent, want 4", n)
	}
}

func TestScheduleValidation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	name, subject, text := "Draft", "Hello", "Hello"
	seg := e.segmentID
	newDraft := func(segment *int64) int64 {
		c, err := campaigns.Create(ctx, e.db, testFrom, campaigns.Input{Name: &name, Subject: &subject, Text: &text, SegmentID: segment})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	draft := newDraft(&seg)
	cases := []struct {
		name  string
		in    ScheduleInput
		field string
	}{
		{"nothing", ScheduleInput{}, "send_at"},
		{"send_at in the past", ScheduleInput{SendAt: ptr(e.base.Add(-time.Minute))}, "send_at"},
		{"send_at now", ScheduleInput{SendAt: ptr(e.base)}, "send_at"},
		{"send_at more than a year ahead", ScheduleInput{SendAt: ptr(e.base.AddDate(1, 0, 2))}, "send_at"},
		{"send_at and cron", ScheduleInput{SendAt: ptr(e.base.Add(time.Hour)), Cron: ptr("0 9 * * *"), Timezone: ptr("UTC")}, "send_at"},
		{"a cron that does not parse", ScheduleInput{Cron: ptr("0 25 * * *"), Timezone: ptr("UTC")}, "cron"},
		{"a six-field cron", ScheduleInput{Cron: ptr("0 0 9 * * *"), Timezone: ptr("UTC")}, "cron"},
		{"a time zone inside the cron", ScheduleInput{Cron: ptr("CRON_TZ=Europe/Oslo 0 9 * * *"), Timezone: ptr("UTC")}, "cron"},
		{"cron without a time zone", ScheduleInput{Cron: ptr("0 9 * * *")}, "timezone"},
		{"an unknown time zone", ScheduleInput{Cron: ptr("0 9 * * *"), Timezone: ptr("Europe/Atlantis")}, "timezone"},
		{"Local", ScheduleInput{Cron: ptr("0 9 * * *"), Timezone: ptr("Local")}, "timezone"},
		{"a time zone without cron", ScheduleInput{Timezone: ptr("UTC")}, "cron"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Schedule(ctx, e.db, draft, tc.in)
			var me *models.Error
			if !asModelError(err, &me) || me.Code != models.EINVALID || me.Fields[tc.field] == "" {
				t.Errorf("got %v, want EINVALID on %s", err, tc.field)
			}
		})
	}
	t.Run("a campaign without a segment", func(t *testing.T) {
		_, err := Schedule(ctx, e.db, newDraft(nil), ScheduleInput{SendAt: ptr(e.base.Add(time.Hour))})
		var me *models.Error
		if !asModelError(err, &me) || me.Fields["segment_id"] == "" {
			t.Errorf("got %v, want EINVALID on segment_id", err)
		}
	})
	t.Run("an unknown campaign", func(t *testing.T) {
		if _, err := Schedule(ctx, e.db, 999999, ScheduleInput{SendAt: ptr(e.base.Add(time.Hour))}); models.ErrorCode(err) != models.ENOTFOUND {
			t.Errorf("got %v, want ENOTFOUND", err)
		}
	})
	t.Run("state changes", func(t *testing.T) {
		id := newDraft(&seg)
		conflict := func(what string, err error) {
			t.Helper()
			if models.ErrorCode(err) != models.ECONFLICT {
				t.Errorf("%s: %v, want ECONFLICT", what, err)
			}
		}
		_, err := Pause(ctx, e.db, id)
		conflict("pausing a draft", err)
		_, err = Resume(ctx, e.db, id)
		conflict("resuming a draft", err)
		c, err := Schedule(ctx, e.db, id, ScheduleInput{SendAt: ptr(e.base.Add(time.Hour))})
		if err != nil || c.Status != "scheduled" || c.SendAt == nil || !c.SendAt.Equal(e.base.Add(time.Hour)) {
			t.Fatalf("schedule: %+v %v", c, err)
		}
		_, err = Schedule(ctx, e.db, id, ScheduleInput{SendAt: ptr(e.base.Add(2 * time.Hour))})
		conflict("scheduling a scheduled campaign", err)
		if c, err = Pause(ctx, e.db, id); err != nil || c.Status != "paused" {
			t.Fatalf("pause: %+v %v", c, err)
		}
		// Paused before it started: it may be scheduled anew, here as a recurring campaign.
		c, err = Schedule(ctx, e.db, id, ScheduleInput{Cron: ptr("30 8 * * 1-5"), Timezone: ptr("Europe/Oslo")})
		if err != nil || c.Status != "scheduled" || c.SendAt != nil || c.Cron == nil {
			t.Fatalf("reschedule: %+v %v", c, err)
		}
		if c, err = Pause(ctx, e.db, id); err != nil || c.Status != "paused" {
			t.Fatalf("pause: %+v %v", c, err)
		}
		if c, err = Resume(ctx, e.db, id); err != nil || c.Status != "scheduled" {
			t.Fatalf("resume before start: %+v %v", c, err)
		}
		if c, err = Cancel(ctx, e.db, id); err != nil || c.Status != "cancelled" {
			t.Fatalf("cancel: %+v %v", c, err)
		}
		_, err = Schedule(ctx, e.db, id, ScheduleInput{SendAt: ptr(e.base.Add(time.Hour))})
		conflict("scheduling a cancelled campaign", err)
		_, err = Pause(ctx, e.db, id)
		conflict("pausing a cancelled campaign", err)
		if c, err := Cancel(ctx, e.db, newDraft(&seg)); err != nil || c.Status != "cancelled" {
			t.Errorf("cancelling a draft: %+v %v", c, err)
		}
	})
}

func asModelError(err error, target **models.Error) bool { return errors.As(err, target) }
