package tracking

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// t0 is when the fixture's first run started.
var t0 = time.Date(2026, 10, 1, 10, 0, 0, 0, time.UTC)

// fixture is a database with two stores (NOK and EUR), members, a segment and a campaign.
type fixture struct {
	db         *models.DB
	oslo, eur  int64 // store ids
	campaignID int64
	segmentID  int64
	members    map[string]int64 // by name
	txns       int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := dbtest.New(t)
	ctx := context.Background()
	f := &fixture{db: db, members: map[string]int64{}}
	for _, s := range []models.StoreInput{
		{Code: "oslo-1", Name: "Oslo", Timezone: "Europe/Oslo", Currency: "NOK"},
		{Code: "berlin-1", Name: "Berlin", Timezone: "Europe/Berlin", Currency: "EUR"},
	} {
		st, err := db.CreateStore(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if s.Currency == "NOK" {
			f.oslo = st.ID
		} else {
			f.eur = st.ID
		}
	}
	f.exec(t, `INSERT INTO segments (name, rules) VALUES ('Everyone', '{"all": []}') RETURNING id`)
	if err := db.Pool.QueryRow(ctx, `SELECT id FROM segments`).Scan(&f.segmentID); err != nil {
		t.Fatal(err)
	}
	f.campaignID = f.campaign(t, false)
	return f
}

func (f *fixture) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := f.db.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) id(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var id int64
	if err := f.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&id); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return id
}

func (f *fixture) campaign(t *testing.T, trackOpens bool) int64 {
	t.Helper()
	return f.id(t, `INSERT INTO campaigns (name, subject, html, segment_id, holdout_percent, status, track_opens)
		VALUES ('November', 'Hi', '<p>Hi</p>', $1, 50, 'sending', $2) RETURNING id`, f.segmentID, trackOpens)
}

// member creates (or returns) an active member called name with email <name>@example.com.
func (f *fixture) member(t *testing.T, name string) int64 {
	t.Helper()
	if id, ok := f.members[name]; ok {
		return id
	}
	card := fmt.Sprintf("70%011d", len(f.members)+1)
	id := f.id(t, `INSERT INTO members (card, email, name, status, marketing_consent, source)
		VALUES ($1, $2, $3, 'active', 'confirmed', 'test') RETURNING id`, card, name+"@example.com", name)
	f.members[name] = id
	return id
}

// run creates a run of campaign started at startedAt.
func (f *fixture) run(t *testing.T, campaignID int64, startedAt time.Time) int64 {
	t.Helper()
	return f.id(t, `INSERT INTO campaign_runs (campaign_id, scheduled_for, status, started_at)
		VALUES ($1, $2, 'sending', $2) RETURNING id`, campaignID, startedAt)
}

// recipient adds name to run with status (sent recipients at sentAt).
func (f *fixture) recipient(t *testing.T, runID int64, name, status string, sentAt time.Time) {
	t.Helper()
	var sent *time.Time
	if status == "sent" {
		sent = &sentAt
	}
	f.exec(t, `INSERT INTO campaign_recipients (run_id, member_id, email, held_out, status, sent_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, runID, f.member(t, name), name+"@example.com", status == "held_out", status, sent)
}

// buy records a sale or refund of name's at a store.
func (f *fixture) buy(t *testing.T, name, kind string, amount int64, store int64, at time.Time) {
	t.Helper()
	f.txns++
	cur := "NOK"
	if store == f.eur {
		cur = "EUR"
	}
	hash := sha256.Sum256(fmt.Appendf(nil, "%d", f.txns))
	f.exec(t, `INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, content_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, store, fmt.Sprintf("T-%d", f.txns), kind, at, amount, cur, f.member(t, name), hash[:])
}

func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var me *models.Error
	if !errors.As(err, &me) || me.Code != models.EINVALID {
		t.Fatalf("error %v, want EINVALID naming %s", err, field)
	}
	if _, ok := me.Fields[field]; !ok {
		t.Errorf("fields %v do not name %s", me.Fields, field)
	}
}

func TestRecordBounce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	now := t0
	f.db.Now = func() time.Time { return now }
	bounce := func(t *testing.T, email, kind string) bool {
		t.Helper()
		res, err := RecordBounce(ctx, f.db, BounceInput{Email: email, Type: kind, Reason: "550 no such user"})
		if err != nil {
			t.Fatal(err)
		}
		return res.Suppressed
	}

	t.Run("a hard bounce suppresses the address at once, lower-cased", func(t *testing.T) {
		if !bounce(t, "Hard@Example.com", BounceHard) {
			t.Error("not suppressed")
		}
		if ok, err := IsSuppressed(ctx, f.db, "hard@example.com"); err != nil || !ok {
			t.Errorf("IsSuppressed = %v, %v", ok, err)
		}
	})
	t.Run("the third soft bounce within 30 days suppresses", func(t *testing.T) {
		for i, want := range []bool{false, false, true, true} {
			now = t0.Add(time.Duration(i) * 24 * time.Hour)
			if got := bounce(t, "soft@example.com", BounceSoft); got != want {
				t.Errorf("soft bounce %d: suppressed %v, want %v", i+1, got, want)
			}
		}
	})
	t.Run("soft bounces more than 30 days apart do not add up", func(t *testing.T) {
		for i, day := range []int{0, 10, 45, 50} { // 0 and 10 have left the window by day 45
			now = t0.Add(time.Duration(day) * 24 * time.Hour)
			if bounce(t, "sparse@example.com", BounceSoft) {
				t.Errorf("soft bounce %d (day %d) suppressed the address", i+1, day)
			}
		}
		now = t0.Add(52 * 24 * time.Hour) // the third within 30 days: 45, 50, 52
		if !bounce(t, "sparse@example.com", BounceSoft) {
			t.Error("the third recent soft bounce did not suppress")
		}
		var hard, soft int
		if err := f.db.Pool.QueryRow(ctx, `SELECT hard_bounces, soft_bounces FROM email_suppressions WHERE email = 'sparse@example.com'`).Scan(&hard, &soft); err != nil {
			t.Fatal(err)
		}
		if hard != 0 || soft != 5 {
			t.Errorf("counts hard %d soft %d, want 0 and 5", hard, soft)
		}
	})
	t.Run("bad input is refused naming the field", func(t *testing.T) {
		_, err := RecordBounce(ctx, f.db, BounceInput{Email: "not an address", Type: BounceHard})
		wantInvalid(t, err, "email")
		_, err = RecordBounce(ctx, f.db, BounceInput{Email: "Kari <kari@example.com>", Type: BounceHard})
		wantInvalid(t, err, "email")
		_, err = RecordBounce(ctx, f.db, BounceInput{Email: "kari@example.com", Type: "permanent"})
		wantInvalid(t, err, "type")
	})
	t.Run("the newest mail sent to the address is marked bounced, not older ones", func(t *testing.T) {
		now = t0.Add(60 * 24 * time.Hour)
		old := f.run(t, f.campaignID, now.Add(-40*24*time.Hour))
		recent := f.run(t, f.campaignID, now.Add(-2*24*time.Hour))
		latest := f.run(t, f.campaignID, now.Add(-1*24*time.Hour))
		f.recipient(t, old, "kari", "sent", now.Add(-40*24*time.Hour))
		f.recipient(t, recent, "kari", "sent", now.Add(-2*24*time.Hour))
		f.recipient(t, latest, "kari", "failed", time.Time{}) // not sent: cannot have bounced
		bounce(t, "KARI@example.com", BounceSoft)
		rows, err := f.db.Pool.Query(ctx, `SELECT run_id FROM campaign_recipients WHERE bounced_at IS NOT NULL`)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for rows.Next() {
			var id int64
			_ = rows.Scan(&id)
			got = append(got, id)
		}
		if len(got) != 1 || got[0] != recent {
			t.Errorf("bounced runs %v, want [%d]", got, recent)
		}
	})
}

func TestTokens(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	ref := Ref{RunID: 12, MemberID: 3456789, LinkID: 7}
	tok := SignClick(secret, ref)
	if got, err := VerifyClick(secret, tok); err != nil || got != ref {
		t.Fatalf("VerifyClick = %+v, %v; want %+v", got, err, ref)
	}
	open := SignOpen(secret, ref)
	if got, err := VerifyOpen(secret, open); err != nil || got != (Ref{RunID: 12, MemberID: 3456789}) {
		t.Fatalf("VerifyOpen = %+v, %v", got, err)
	}
	tampered := []byte(tok)
	tampered[2] ^= 1
	bad := map[string]string{
		"a tampered token":            string(tampered),
		"an open token":               open,
		"a token of another secret":   SignClick([]byte("another secret"), ref),
		"an empty token":              "",
		"a token that is not base64":  "not*base64",
		"a token too short for a MAC": "AAAA",
	}
	for name, tok := range bad {
		t.Run(name+" is refused", func(t *testing.T) {
			if _, err := VerifyClick(secret, tok); !errors.Is(err, ErrBadToken) {
				t.Errorf("err %v, want ErrBadToken", err)
			}
		})
	}
}

func TestRewrite(t *testing.T) {
	t.Parallel()
	base := "https://club.example.com"
	body := `<p><a href="https://shop.example.com/vinyl?a=1&amp;b=2">Vinyl</a>
<a class="x" href='http://shop.example.com/cd'>CD</a>
<a href="mailto:shop@example.com">Mail us</a>
<a href="https://club.example.com/preferences?token=abc">Preferences</a>
<a href="https://club.example.com/unsubscribe?token=abc">Unsubscribe</a>
<a href="https://club.example.com/join">Join</a>
<a href="#top">Top</a><a href="https://shop.example.com/vinyl?a=1&amp;b=2">again</a>
<img src="https://shop.example.com/logo.png"></p>`
	urls := ExtractLinks(body, base)
	want := []string{"https://shop.example.com/vinyl?a=1&b=2", "http://shop.example.com/cd", "https://club.example.com/join"}
	if fmt.Sprint(urls) != fmt.Sprint(want) {
		t.Fatalf("ExtractLinks = %q, want %q", urls, want)
	}
	ids := map[string]int64{urls[0]: 1, urls[1]: 2} // the join link is left untracked
	got := Rewrite(body, ids, func(id int64) string { return fmt.Sprintf("%s/c/T%d?x=1&y=2", base, id) })
	wantBody := `<p><a href="https://club.example.com/c/T1?x=1&amp;y=2">Vinyl</a>
<a class="x" href="https://club.example.com/c/T2?x=1&amp;y=2">CD</a>
<a href="mailto:shop@example.com">Mail us</a>
<a href="https://club.example.com/preferences?token=abc">Preferences</a>
<a href="https://club.example.com/unsubscribe?token=abc">Unsubscribe</a>
<a href="https://club.example.com/join">Join</a>
<a href="#top">Top</a><a href="https://club.example.com/c/T1?x=1&amp;y=2">again</a>
<img src="https://shop.example.com/logo.png"></p>`
	if got != wantBody {
		t.Errorf("Rewrite =\n%s\nwant\n%s", got, wantBody)
	}
}

func TestTrackerAndClicks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	base := "https://club.example.com"
	run := f.run(t, f.campaignID, t0)
	kari := f.member(t, "kari")
	body := `<html><body><a href="https://shop.example.com/a">A</a> <a href="mailto:x@example.com">m</a></body></html>`

	tr, err := NewTracker(ctx, f.db, secret, base, f.campaignID, ExtractLinks(body, base))
	if err != nil {
		t.Fatal(err)
	}
	out := tr.Apply(run, kari, body)
	links := ExtractLinks(out, "")
	if len(links) != 1 || len(links[0]) <= len(base+"/c/") || links[0][:len(base+"/c/")] != base+"/c/" {
		t.Fatalf("rewritten links %q in %s", links, out)
	}
	ref, err := VerifyClick(secret, links[0][len(base+"/c/"):])
	if err != nil || ref.RunID != run || ref.MemberID != kari {
		t.Fatalf("token names %+v (%v)", ref, err)
	}
	if out2 := tr.Apply(run, kari, body); out2 != out {
		t.Error("a second mail to the same member differs")
	}
	t.Run("without track_opens no pixel is added", func(t *testing.T) {
		if containsPixel(out) {
			t.Errorf("pixel in %s", out)
		}
	})

	t.Run("a click is recorded and gives the stored URL", func(t *testing.T) {
		target, err := RecordClick(ctx, f.db, ref)
		if err != nil || target != "https://shop.example.com/a" {
			t.Fatalf("RecordClick = %q, %v", target, err)
		}
		var n int
		_ = f.db.Pool.QueryRow(ctx, `SELECT count(*) FROM campaign_clicks WHERE run_id = $1 AND member_id = $2 AND link_id = $3`, run, kari, ref.LinkID).Scan(&n)
		if n != 1 {
			t.Errorf("%d clicks recorded, want 1", n)
		}
	})
	t.Run("a link of another campaign is not found and not recorded", func(t *testing.T) {
		other := f.campaign(t, false)
		ids, err := LinkIDs(ctx, f.db, other, []string{"https://evil.example.com/"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = RecordClick(ctx, f.db, Ref{RunID: run, MemberID: kari, LinkID: ids["https://evil.example.com/"]})
		if models.ErrorCode(err) != models.ENOTFOUND {
			t.Errorf("err %v, want ENOTFOUND", err)
		}
		var n int
		_ = f.db.Pool.QueryRow(ctx, `SELECT count(*) FROM campaign_clicks`).Scan(&n)
		if n != 1 {
			t.Errorf("%d clicks recorded, want still 1", n)
		}
	})
	t.Run("with track_opens the pixel is added and opens are recorded", func(t *testing.T) {
		c := f.campaign(t, true)
		r := f.run(t, c, t0)
		tr, err := NewTracker(ctx, f.db, secret, base, c, ExtractLinks(body, base))
		if err != nil {
			t.Fatal(err)
		}
		out := tr.Apply(r, kari, body)
		if !containsPixel(out) {
			t.Fatalf("no pixel in %s", out)
		}
		if ok, err := RecordOpen(ctx, f.db, Ref{RunID: r, MemberID: kari}); err != nil || !ok {
			t.Errorf("RecordOpen = %v, %v", ok, err)
		}
		if ok, err := RecordOpen(ctx, f.db, Ref{RunID: run, MemberID: kari}); err != nil || ok {
			t.Errorf("an open of a campaign without tracking: RecordOpen = %v, %v", ok, err)
		}
	})
}

func containsPixel(s string) bool {
	return strings.Contains(s, `/o/`) && strings.Contains(s, `.gif" width="1" height="1"`)
}

// TestApplyToARenderedCampaign runs a real rendered mail through the tracker: the campaign's
// links are tracked, the footer's preferences and unsubscribe links reach the member untouched.
func TestApplyToARenderedCampaign(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	base := "https://club.example.com"
	secret := []byte("0123456789abcdef0123456789abcdef")
	compiled, err := campaigns.Compile(&campaigns.Campaign{Subject: "Hi",
		HTML: `<p><a href="https://shop.example.com/sale?from=club&amp;x=1">Sale</a> <a href="mailto:shop@example.com">Mail</a></p>`},
		"Shop <news@shop.example.com>")
	if err != nil {
		t.Fatal(err)
	}
	kari := f.member(t, "kari")
	run := f.run(t, f.campaignID, t0)
	links := campaigns.MemberLinks(base, secret, kari, t0)
	msg, err := compiled.Render(ctx, campaigns.Recipient{RunID: run, MemberID: kari, To: "kari@example.com",
		Member: campaigns.MemberData{Name: "Kari", Card: "7012345678908", Language: "en"}, Links: links})
	if err != nil {
		t.Fatal(err)
	}
	a, b, err := compiled.SampleHTML(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTracker(ctx, f.db, secret, base, f.campaignID, CommonLinks(base, a, b))
	if err != nil {
		t.Fatal(err)
	}
	out := tr.Apply(run, kari, msg.HTML)
	got := ExtractLinks(out, "")
	var tracked, prefs, unsub bool
	for _, u := range got {
		switch {
		case strings.HasPrefix(u, base+"/c/"):
			ref, err := VerifyClick(secret, strings.TrimPrefix(u, base+"/c/"))
			target, cerr := RecordClick(ctx, f.db, ref)
			tracked = err == nil && cerr == nil && target == "https://shop.example.com/sale?from=club&x=1"
		case u == links.Preferences:
			prefs = true
		case u == links.Unsubscribe:
			unsub = true
		case strings.Contains(u, "shop.example.com"):
			t.Errorf("campaign link %s left untracked", u)
		}
	}
	if !tracked || !prefs || !unsub || !strings.Contains(out, `href="mailto:shop@example.com"`) {
		t.Errorf("tracked %v, preferences kept %v, unsubscribe kept %v in\n%s", tracked, prefs, unsub, out)
	}
}

// TestLinksBuiltFromMemberDataAreNotTracked: the tracker knows only the links common to the
// template's sample renders; a URL made for one member is left as it is and never stored.
func TestLinksBuiltFromMemberDataAreNotTracked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	base := "https://club.example.com"
	secret := []byte("0123456789abcdef0123456789abcdef")
	compiled, err := campaigns.Compile(&campaigns.Campaign{Subject: "Hi", HTML: `<p>
<a href="https://shop.example.com/records">Records</a>
<a href="https://shop.example.com/me?card={{.Member.Card}}">Your card</a>
<a href="https://shop.example.com/{{.Member.HomeStore}}">Your store</a></p>`}, "Shop <news@shop.example.com>")
	if err != nil {
		t.Fatal(err)
	}
	a, b, err := compiled.SampleHTML(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	links := CommonLinks(base, a, b)
	if len(links) != 1 || links[0] != "https://shop.example.com/records" {
		t.Fatalf("template links %q, want only the fixed one", links)
	}
	tr, err := NewTracker(ctx, f.db, secret, base, f.campaignID, links)
	if err != nil {
		t.Fatal(err)
	}
	run := f.run(t, f.campaignID, t0)
	for _, name := range []string{"kari", "ola", "per"} {
		id := f.member(t, name)
		msg, err := compiled.Render(ctx, campaigns.Recipient{RunID: run, MemberID: id, To: name + "@example.com",
			Member: campaigns.MemberData{Name: name, Card: fmt.Sprintf("70000000000%02d", id), HomeStore: name + "-1"},
			Links:  campaigns.MemberLinks(base, secret, id, t0)})
		if err != nil {
			t.Fatal(err)
		}
		out := tr.Apply(run, id, msg.HTML)
		if !strings.Contains(out, fmt.Sprintf(`href="https://shop.example.com/me?card=70000000000%02d"`, id)) ||
			!strings.Contains(out, `href="https://shop.example.com/`+name+`-1"`) {
			t.Errorf("the member's own links were changed:\n%s", out)
		}
		if strings.Contains(out, `"https://shop.example.com/records"`) {
			t.Errorf("the template's link was not tracked:\n%s", out)
		}
	}
	var n int
	if err := f.db.Pool.QueryRow(ctx, `SELECT count(*) FROM campaign_links WHERE campaign_id = $1`, f.campaignID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d links stored, want 1", n)
	}
}
