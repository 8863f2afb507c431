package handlers

import (
	"context"
	"crypto/sha256"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regulars/regulars/handlers/browsertest"

	"github.com/chromedp/chromedp"
	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/dispatch"
	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/templates"
)

// campaignConsole is a console with a store, three mailable members and a saved segment of them.
type campaignConsole struct {
	*consoleClient
	client    *http.Client
	csrf      string
	storeID   int64
	segmentID int64
	members   []int64
	cards     []string
}

func newCampaignConsole(t *testing.T) *campaignConsole {
	t.Helper()
	cc := newConsole(t)
	client, csrf := cc.loginAs(t, "marketer")
	ctx := context.Background()
	st, err := cc.DB.CreateStore(ctx, models.StoreInput{Code: "oslo-1", Name: "Oslo", Timezone: "Europe/Oslo", Currency: "NOK"})
	if err != nil {
		t.Fatal(err)
	}
	e := &campaignConsole{consoleClient: cc, client: client, csrf: csrf, storeID: st.ID}
	for i, name := range []string{"Kari Nordmann", "Ola Hansen", "Siri Berg"} {
		card := models.WithCheckDigit(fmt.Sprintf("70123456%04d", i+1))
		var id int64
		if err := cc.DB.Pool.QueryRow(ctx, `INSERT INTO members (card, email, name, status, marketing_consent, source)
			VALUES ($1, $2, $3, 'active', 'confirmed', 'test') RETURNING id`,
			card, fmt.Sprintf("member%d@example.com", i+1), name).Scan(&id); err != nil {
			t.Fatal(err)
		}
		e.members = append(e.members, id)
		e.cards = append(e.cards, card)
	}
	if err := cc.DB.Pool.QueryRow(ctx, `INSERT INTO segments (name, rules) VALUES ('Everyone', '{"field": "email_domain", "op": "eq", "value": "example.com"}') RETURNING id`).
		Scan(&e.segmentID); err != nil {
		t.Fatal(err)
	}
	// The editor shows the segment's cached counts, as the counting job leaves them.
	if _, err := segments.Recount(ctx, cc.DB, e.segmentID, time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	return e
}

// campaignForm is a valid editor form for the segment.
func (e *campaignConsole) campaignForm() url.Values {
	return url.Values{
		"name":            {"Win-back November"},
		"subject":         {"Hi {{.Member.FirstName}}, we miss you"},
		"from":            {"Vinyl shop <news@shop.example>"},
		"html":            {"<h1>Hi {{.Member.FirstName}}</h1>\r\n<p>New records are in at {{.Member.HomeStore}}.</p>"},
		"text":            {"Hi {{.Member.FirstName}}, new records are in."},
		"segment_id":      {strconv.FormatInt(e.segmentID, 10)},
		"holdout_percent": {"10"},
	}
}

var campaignLocation = regexp.MustCompile(`^/console/campaigns/(\d+)\?done=`)

// create posts the editor form and returns the new campaign's id.
func (e *campaignConsole) create(t *testing.T, form url.Values) int64 {
	t.Helper()
	res := e.postForm(t, e.client, "/console/campaigns", e.csrf, form)
	m := campaignLocation.FindStringSubmatch(res.Header.Get("Location"))
	if res.Status != http.StatusSeeOther || m == nil {
		t.Fatalf("create: %d %q\n%s", res.Status, res.Header.Get("Location"), res.Body)
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	return id
}

func (e *campaignConsole) status(t *testing.T, id int64) string {
	t.Helper()
	c, err := campaigns.Get(context.Background(), e.DB, id)
	if err != nil {
		t.Fatal(err)
	}
	return c.Status
}

func (e *campaignConsole) path(id int64, suffix string) string {
	return "/console/campaigns/" + strconv.FormatInt(id, 10) + suffix
}

// campFieldError is the error shown next to a field (the element id="e-<field>").
func campFieldError(body, id string) string {
	m := regexp.MustCompile(`<p class="camp-error" id="` + regexp.QuoteMeta(id) + `">([^<]*)</p>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestConsoleCampaignEditor(t *testing.T) {
	e := newCampaignConsole(t)

	t.Run("the new campaign form offers the saved segments with their mailable counts", func(t *testing.T) {
		res := e.get(t, e.client, "/console/campaigns/new?starter=blank")
		if res.Status != http.StatusOK || !strings.Contains(res.Body, "Everyone – 3 mailable of 3") {
			t.Fatalf("new: %d\n%s", res.Status, res.Body)
		}
		if strings.Contains(res.Body, "<script>") || strings.Contains(res.Body, "style=") {
			t.Error("the page has inline script or style")
		}
	})

	t.Run("the new campaign form opens on a starter, with its text made from the HTML", func(t *testing.T) {
		res := e.get(t, e.client, "/console/campaigns/new")
		if res.Status != http.StatusOK || !strings.Contains(res.Body, `id="starter-newsletter" aria-current="true"`) ||
			!strings.Contains(res.Body, "is what is new at") || !strings.Contains(res.Body, `id="f-text-auto" name="text_auto" type="checkbox" value="1" checked`) {
			t.Fatalf("new: %d\n%s", res.Status, res.Body)
		}
		for _, key := range []string{"offer", "winback", "blank"} {
			if !strings.Contains(res.Body, `href="/console/campaigns/new?starter=`+key+`"`) {
				t.Errorf("no starter %s offered", key)
			}
		}
		if res := e.get(t, e.client, "/console/campaigns/new?starter=nope"); res.Status != http.StatusNotFound {
			t.Errorf("an unknown starter: %d, want 404", res.Status)
		}
	})

	t.Run("a template error is shown next to the HTML field with its line", func(t *testing.T) {
		form := e.campaignForm()
		form.Set("html", "<p>Hi</p>\r\n<p>{{.Member.Nickname}}</p>")
		res := e.postForm(t, e.client, "/console/campaigns", e.csrf, form)
		if res.Status != http.StatusUnprocessableEntity {
			t.Fatalf("status %d, want 422", res.Status)
		}
		why := campFieldError(res.Body, "e-html")
		if !strings.Contains(why, "line 2") || !strings.Contains(why, "Nickname") {
			t.Errorf("html error %q, want line 2 naming Nickname\n%s", why, res.Body)
		}
		if !strings.Contains(res.Body, `aria-describedby="e-html"`) {
			t.Error("the HTML field does not point at its error")
		}
		if !strings.Contains(res.Body, "{{.Member.Nickname}}") {
			t.Error("the refused form lost what was typed")
		}
		if n := e.countRows(t, `SELECT count(*) FROM campaigns`); n != 0 {
			t.Errorf("%d campaigns stored", n)
		}
	})

	t.Run("a missing name is refused next to the name field", func(t *testing.T) {
		form := e.campaignForm()
		form.Set("name", " ")
		res := e.postForm(t, e.client, "/console/campaigns", e.csrf, form)
		if res.Status != http.StatusUnprocessableEntity || campFieldError(res.Body, "e-name") != "is required" {
			t.Fatalf("status %d, name error %q", res.Status, campFieldError(res.Body, "e-name"))
		}
	})

	var id int64
	t.Run("a valid form creates a draft and goes to its page", func(t *testing.T) {
		id = e.create(t, e.campaignForm())
		c, err := campaigns.Get(context.Background(), e.DB, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != "draft" || c.Name != "Win-back November" || c.HoldoutPercent != 10 || c.SegmentID == nil || *c.SegmentID != e.segmentID {
			t.Errorf("stored %+v", c)
		}
		if strings.Contains(c.HTML, "\r") {
			t.Error("the HTML kept the browser's CRLF line ends")
		}
		res := e.get(t, e.client, e.path(id, "?done=created"))
		if res.Status != http.StatusOK || !strings.Contains(res.Body, "Campaign created.") {
			t.Fatalf("page: %d\n%s", res.Status, res.Body)
		}
		for _, want := range []string{"Kari Nordmann – " + e.cards[0], `data-preview-url="/console/api/campaigns/` + strconv.FormatInt(id, 10) + `/preview"`,
			`<iframe id="camp-preview-frame" class="camp-frame" sandbox`, `<script src="/static/console-campaigns.js"`} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("the editor lacks %q", want)
			}
		}
	})

	t.Run("the list shows the campaign with its segment and status", func(t *testing.T) {
		res := e.get(t, e.client, "/console/campaigns")
		if res.Status != http.StatusOK {
			t.Fatalf("list: %d", res.Status)
		}
		for _, want := range []string{"Win-back November", "<td>Everyone</td>", "camp-status-draft", "not scheduled", "not sent yet"} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("the list lacks %q\n%s", want, res.Body)
			}
		}
	})

	t.Run("saving the form updates the draft", func(t *testing.T) {
		form := e.campaignForm()
		form.Set("subject", "Hello again {{.Member.FirstName}}")
		form.Set("track_opens", "1")
		res := e.postForm(t, e.client, e.path(id, ""), e.csrf, form)
		if res.Status != http.StatusSeeOther || !strings.HasSuffix(res.Header.Get("Location"), "?done=saved") {
			t.Fatalf("update: %d %s\n%s", res.Status, res.Header.Get("Location"), res.Body)
		}
		c, _ := campaigns.Get(context.Background(), e.DB, id)
		if c.Subject != "Hello again {{.Member.FirstName}}" || !c.TrackOpens {
			t.Errorf("stored %+v", c)
		}
	})

	t.Run("a bad template in an update is shown and nothing changes", func(t *testing.T) {
		form := e.campaignForm()
		form.Set("text", "Hi {{if}}")
		res := e.postForm(t, e.client, e.path(id, ""), e.csrf, form)
		if res.Status != http.StatusUnprocessableEntity || !strings.Contains(campFieldError(res.Body, "e-text"), "line 1") {
			t.Fatalf("status %d, text error %q", res.Status, campFieldError(res.Body, "e-text"))
		}
	})

	t.Run("an unknown campaign is a console 404 page", func(t *testing.T) {
		res := e.get(t, e.client, "/console/campaigns/999999")
		if res.Status != http.StatusNotFound || !strings.Contains(res.Body, "There is no such campaign.") {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
	})
}

func (e *campaignConsole) countRows(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.DB.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConsoleCampaignPreview(t *testing.T) {
	e := newCampaignConsole(t)
	id := e.create(t, e.campaignForm())

	t.Run("the live preview API renders the campaign for a member", func(t *testing.T) {
		res := e.get(t, e.client, fmt.Sprintf("/console/api/campaigns/%d/preview?member_id=%d", id, e.members[1]))
		if res.Status != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%d %s\n%s", res.Status, res.Header.Get("Content-Type"), res.Body)
		}
		for _, want := range []string{`"subject":"Hi Ola, we miss you"`, `\u003ch1\u003eHi Ola\u003c/h1\u003e`, `"text":"Hi Ola, new records are in.`} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("preview lacks %s\n%s", want, res.Body)
			}
		}
	})
	t.Run("the live preview API names a bad member", func(t *testing.T) {
		res := e.get(t, e.client, fmt.Sprintf("/console/api/campaigns/%d/preview?member_id=x", id))
		if res.Status != http.StatusUnprocessableEntity || !strings.Contains(res.Body, `"member_id"`) {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
	})
	t.Run("the live preview API needs a session", func(t *testing.T) {
		res := e.get(t, e.newClient(t), fmt.Sprintf("/console/api/campaigns/%d/preview?member_id=%d", id, e.members[0]))
		if res.Status == http.StatusOK {
			t.Fatalf("anonymous preview: %d", res.Status)
		}
	})
	t.Run("the preview form renders the mail into the page for a card", func(t *testing.T) {
		res := e.postForm(t, e.client, e.path(id, "/preview"), e.csrf, url.Values{"card": {e.cards[2]}})
		if res.Status != http.StatusOK {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
		if !strings.Contains(res.Body, `<span id="camp-preview-subject">Hi Siri, we miss you</span>`) ||
			!strings.Contains(res.Body, `srcdoc="&lt;h1&gt;Hi Siri&lt;/h1&gt;`) {
			t.Errorf("no preview for Siri in the page\n%s", res.Body)
		}
	})
	t.Run("the preview form names an unknown card", func(t *testing.T) {
		res := e.postForm(t, e.client, e.path(id, "/preview"), e.csrf, url.Values{"card": {models.WithCheckDigit("999999999999")}})
		if res.Status != http.StatusUnprocessableEntity || campFieldError(res.Body, "e-p-card") != "no member has this card" {
			t.Fatalf("%d card error %q", res.Status, campFieldError(res.Body, "e-p-card"))
		}
	})
}

func TestConsoleCampaignSchedule(t *testing.T) {
	e := newCampaignConsole(t)
	id := e.create(t, e.campaignForm())
	tomorrow := time.Now().In(time.UTC).AddDate(0, 0, 1).Format(time.DateOnly)

	t.Run("a date in the past is refused next to the date", func(t *testing.T) {
		res := e.postForm(t, e.client, e.path(id, "/schedule"), e.csrf, url.Values{"mode": {"once"},
			"date": {"2020-01-01"}, "time": {"09:00"}, "timezone": {"Europe/Oslo"}})
		if res.Status != http.StatusUnprocessableEntity || campFieldError(res.Body, "e-s-date") != "must be in the future" {
			t.Fatalf("%d date error %q\n%s", res.Status, campFieldError(res.Body, "e-s-date"), res.Body)
		}
	})
	t.Run("a bad cron expression is refused next to it", func(t *testing.T) {
		res := e.postForm(t, e.client, e.path(id, "/schedule"), e.csrf, url.Values{"mode": {"recurring"},
			"cron": {"every monday"}, "cron_timezone": {"Europe/Oslo"}})
		if res.Status != http.StatusUnprocessableEntity || !strings.Contains(campFieldError(res.Body, "e-s-cron"), "five-field cron") {
			t.Fatalf("%d cron error %q", res.Status, campFieldError(res.Body, "e-s-cron"))
		}
	})
	t.Run("a one-off at a date, time and zone schedules the campaign", func(t *testing.T) {
		res := e.postForm(t, e.client, e.path(id, "/schedule"), e.csrf, url.Values{"mode": {"once"},
			"date": {tomorrow}, "time": {"09:30"}, "timezone": {"Europe/Oslo"}})
		if res.Status != http.StatusSeeOther || !strings.HasSuffix(res.Header.Get("Location"), "done=scheduled") {
			t.Fatalf("%d %s\n%s", res.Status, res.Header.Get("Location"), res.Body)
		}
		c, _ := campaigns.Get(context.Background(), e.DB, id)
		oslo, _ := time.LoadLocation("Europe/Oslo")
		if c.Status != "scheduled" || c.SendAt == nil || c.SendAt.In(oslo).Format("2006-01-02 15:04") != tomorrow+" 09:30" {
			t.Fatalf("stored %s at %v", c.Status, c.SendAt)
		}
		page := e.get(t, e.client, e.path(id, "?done=scheduled"))
		if !strings.Contains(page.Body, "Campaign scheduled.") || !strings.Contains(page.Body, "pause it to change its content") {
			t.Errorf("page after scheduling:\n%s", page.Body)
		}
	})
	t.Run("a scheduled campaign cannot be edited and the page says why", func(t *testing.T) {
		res := e.postForm(t, e.client, e.path(id, ""), e.csrf, e.campaignForm())
		if res.Status != http.StatusConflict || !strings.Contains(res.Body, "only a draft or a paused campaign may be changed") {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
	})
	steps := []struct {
		name, action string
		status       int
		want         string
	}{
		{"pause stops a scheduled campaign", "pause", http.StatusSeeOther, "paused"},
		{"pausing twice is refused with the reason", "pause", http.StatusConflict, "paused"},
		{"resume schedules it again", "resume", http.StatusSeeOther, "scheduled"},
		{"cancel ends it", "cancel", http.StatusSeeOther, "cancelled"},
		{"a cancelled campaign cannot be resumed", "resume", http.StatusConflict, "cancelled"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			res := e.postForm(t, e.client, e.path(id, "/"+st.action), e.csrf, nil)
			if res.Status != st.status {
				t.Fatalf("%s: %d, want %d\n%s", st.action, res.Status, st.status, res.Body)
			}
			if st.status == http.StatusConflict && !strings.Contains(res.Body, `class="camp-problem" role="alert">Not `) {
				t.Errorf("no reason on the page\n%s", res.Body)
			}
			if got := e.status(t, id); got != st.want {
				t.Errorf("status %s, want %s", got, st.want)
			}
		})
	}
	t.Run("a recurring schedule stores the cron and zone", func(t *testing.T) {
		id := e.create(t, e.campaignForm())
		res := e.postForm(t, e.client, e.path(id, "/schedule"), e.csrf, url.Values{"mode": {"recurring"},
			"cron": {"0 9 * * 1"}, "cron_timezone": {"Europe/Oslo"}})
		if res.Status != http.StatusSeeOther {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
		c, _ := campaigns.Get(context.Background(), e.DB, id)
		if c.Status != "scheduled" || c.Cron == nil || *c.Cron != "0 9 * * 1" || *c.Timezone != "Europe/Oslo" {
			t.Fatalf("stored %+v", c)
		}
		list := e.get(t, e.client, "/console/campaigns")
		if !strings.Contains(list.Body, `<span class="camp-cron">0 9 * * 1</span> Europe/Oslo`) || !strings.Contains(list.Body, "next ") {
			t.Errorf("the list does not show the recurring schedule\n%s", list.Body)
		}
	})
	t.Run("a campaign without a segment cannot be scheduled", func(t *testing.T) {
		form := e.campaignForm()
		form.Del("segment_id")
		id := e.create(t, form)
		res := e.postForm(t, e.client, e.path(id, "/schedule"), e.csrf, url.Values{"mode": {"once"},
			"date": {tomorrow}, "time": {"09:30"}, "timezone": {"UTC"}})
		if res.Status != http.StatusUnprocessableEntity || !strings.Contains(res.Body, "needs a segment") {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
	})
}

func TestConsoleCampaignTestSend(t *testing.T) {
	e := newCampaignConsole(t)
	id := e.create(t, e.campaignForm())

	t.Run("without a mail server the page says so", func(t *testing.T) {
		res := e.postForm(t, e.client, e.path(id, "/test"), e.csrf, url.Values{"addresses": {"me@example.com"}})
		if res.Status != http.StatusServiceUnavailable || !strings.Contains(campFieldError(res.Body, "e-t-addresses"), "no mail server") {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
	})

	smtp := smtptest.New(t)
	e.Server.reconfigure(t, withCampaignMail(t, smtp.URL(), "https://club.example", "Shop <news@shop.example>"))

	t.Run("a bad address is named next to the field and nothing is sent", func(t *testing.T) {
		res := e.postForm(t, e.client, e.path(id, "/test"), e.csrf, url.Values{"addresses": {"me@example.com, not-an-address"}})
		if res.Status != http.StatusUnprocessableEntity || !strings.Contains(campFieldError(res.Body, "e-t-addresses"), "not-an-address: must be an email address") {
			t.Fatalf("%d error %q", res.Status, campFieldError(res.Body, "e-t-addresses"))
		}
		if smtp.Count() != 0 {
			t.Errorf("%d mails sent", smtp.Count())
		}
	})
	t.Run("the test goes to each given address with the sample member", func(t *testing.T) {
		res := e.postForm(t, e.client, e.path(id, "/test"), e.csrf, url.Values{
			"addresses": {"anna@shop.example, bo@shop.example"}, "member_id": {strconv.FormatInt(e.members[0], 10)}})
		if res.Status != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "done=tested") {
			t.Fatalf("%d %s\n%s", res.Status, res.Header.Get("Location"), res.Body)
		}
		got := map[string]string{}
		for _, msg := range smtp.Messages() {
			got[strings.Join(msg.To, ",")] = msg.Header.Get("Subject")
		}
		want := map[string]string{"anna@shop.example": "[TEST] Hi Kari, we miss you", "bo@shop.example": "[TEST] Hi Kari, we miss you"}
		if len(got) != 2 || got["anna@shop.example"] != want["anna@shop.example"] || got["bo@shop.example"] != want["bo@shop.example"] {
			t.Errorf("delivered %v, want %v", got, want)
		}
		if e.countRows(t, `SELECT count(*) FROM campaign_runs`) != 0 || e.status(t, id) != "draft" {
			t.Error("a test send changed the campaign")
		}
	})
}

func TestConsoleCampaignReport(t *testing.T) {
	e := newCampaignConsole(t)
	ctx := context.Background()
	id := e.create(t, e.campaignForm())
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := e.DB.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	t.Run("a campaign that has not sent says so", func(t *testing.T) {
		res := e.get(t, e.client, e.path(id, "/report"))
		if res.Status != http.StatusOK || !strings.Contains(res.Body, "Nothing has been sent yet.") {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
	})

	// One run started a day ago: Kari and Ola were mailed, Siri's mail failed, and two more
	// members were held out. Kari buys 300, Ola 200, one held-out member 50 (NOK).
	start := time.Now().Add(-24 * time.Hour).UTC().Truncate(time.Second)
	exec(`UPDATE campaigns SET status = 'sending' WHERE id = $1`, id)
	var run int64
	if err := e.DB.Pool.QueryRow(ctx, `INSERT INTO campaign_runs (campaign_id, scheduled_for, status, started_at)
		VALUES ($1, $2, 'sending', $2) RETURNING id`, id, start).Scan(&run); err != nil {
		t.Fatal(err)
	}
	var held []int64
	for i := range 2 {
		var m int64
		if err := e.DB.Pool.QueryRow(ctx, `INSERT INTO members (card, email, name, status, marketing_consent, source)
			VALUES ($1, $2, 'Held', 'active', 'confirmed', 'test') RETURNING id`,
			models.WithCheckDigit(fmt.Sprintf("70999999%04d", i)), fmt.Sprintf("held%d@example.com", i)).Scan(&m); err != nil {
			t.Fatal(err)
		}
		held = append(held, m)
	}
	sent := start.Add(time.Minute)
	rec := func(member int64, heldOut bool, status string, at *time.Time) {
		exec(`INSERT INTO campaign_recipients (run_id, member_id, email, held_out, status, sent_at)
			VALUES ($1, $2, 'x@example.com', $3, $4, $5)`, run, member, heldOut, status, at)
	}
	rec(e.members[0], false, "sent", &sent)
	rec(e.members[1], false, "sent", &sent)
	rec(e.members[2], false, "failed", nil)
	rec(held[0], true, "held_out", nil)
	rec(held[1], true, "held_out", nil)
	txn := 0
	buy := func(member, amount int64) {
		txn++
		hash := sha256.Sum256(fmt.Appendf(nil, "%d", txn))
		exec(`INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, content_hash)
			VALUES ($1, $2, 'sale', $3, $4, 'NOK', $5, $6)`, e.storeID, fmt.Sprintf("T-%d", txn), sent.Add(time.Hour), amount, member, hash[:])
	}
	buy(e.members[0], 30000)
	buy(e.members[1], 20000)
	buy(held[0], 5000)

	t.Run("the report shows the figures from the runs and refreshes while sending", func(t *testing.T) {
		res := e.get(t, e.client, e.path(id, "/report"))
		if res.Status != http.StatusOK {
			t.Fatalf("%d\n%s", res.Status, res.Body)
		}
		for _, want := range []string{
			"<dt>Recipients</dt><dd>3</dd>", "<dt>Held out</dt><dd>2</dd>", "<dt>Sent</dt><dd>2</dd>",
			`<dt>Failed</dt><dd class="camp-bad">1</dd>`,
			// 500 NOK attributed, 250 per recipient, 25 per held-out member: lift 225.
			"500.00 NOK", "250.00 NOK", "25.00 NOK", "225.00 NOK",
			`<meta http-equiv="refresh" content="5">`,
			// A day after the send the 7 days are not over: no verdict, and the date it ends.
			"Preliminary — final on " + sent.AddDate(0, 0, 7).In(e.Server.srv.tz).Format("2006-01-02 15:04"),
		} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("the report lacks %q", want)
			}
		}
		for _, verdict := range []string{"above zero, the mail made a difference", "may be chance", "below zero, the members", `<svg class="camp-ci"`, "No verdict"} {
			if strings.Contains(res.Body, verdict) {
				t.Errorf("a preliminary report says %q", verdict)
			}
		}
		if strings.Contains(res.Body, "style=") {
			t.Error("the report has inline style attributes")
		}
	})
	// The gross margin of the attributed purchases (issue 16.4): "–" until a line has a cost in
	// the catalogue, never 0, and the lines of unknown cost counted beside it.
	margin := func(t *testing.T, gross, known, unknown, note string) string {
		t.Helper()
		return checkReportMargin(t, e.get(t, e.client, e.path(id, "/report")).Body, gross, known, unknown, note)
	}
	none := templates.MissingFigure
	t.Run("without receipt lines there is no margin", func(t *testing.T) {
		margin(t, none, none, `0 <span class="camp-muted">of 0</span>`,
			"No purchase here came with receipt lines, so there is no margin.")
	})
	// Kari's sale: A×2 @100 and Z @100 (Z is not in the catalogue); Ola's: B @200. The held-out
	// member's line of A is in no margin.
	exec(`INSERT INTO products (sku, name, price_minor) VALUES ('A', 'A', 10000), ('B', 'B', 20000)`)
	exec(`INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor)
		SELECT t.id, l.line, l.sku, l.qty, l.price FROM transactions t
		JOIN (VALUES ($1::bigint, 1, 'A', 2, 10000), ($1, 2, 'Z', 1, 10000), ($2, 1, 'B', 1, 20000), ($3, 1, 'A', 1, 5000))
		  AS l (member_id, line, sku, qty, price) ON l.member_id = t.member_id`, e.members[0], e.members[1], held[0])
	t.Run("lines whose cost the catalogue does not know are counted, not costed at 0", func(t *testing.T) {
		margin(t, none, none, `3 <span class="camp-muted">of 3</span>`,
			"3 of 3 lines have no cost in the catalogue; the margin leaves them out. No line has a known cost, so there is no margin")
	})
	t.Run("with costs the report gives the margin of the lines of known cost", func(t *testing.T) {
		exec(`UPDATE products SET cost_minor = 6000 WHERE sku = 'A'`)
		// A: 2 × (100 − 60) = 80 NOK on 200 NOK of sales; Z and B (no cost) left out.
		body := margin(t, templates.FormatMoney(8000, "NOK"), templates.FormatMoney(20000, "NOK"), `2 <span class="camp-muted">of 3</span>`,
			"2 of 3 lines have no cost in the catalogue; the margin leaves them out.")
		if strings.Contains(body, "No line has a known cost") {
			t.Error("the report says no line has a known cost")
		}
		exec(`UPDATE products SET cost_minor = 15000 WHERE sku = 'B'`)
		margin(t, templates.FormatMoney(13000, "NOK"), templates.FormatMoney(40000, "NOK"), `1 <span class="camp-muted">of 3</span>`, "1 of 3 lines has no cost in the catalogue; the margin leaves it out.")
	})
	t.Run("a recurring campaign's runs each show their margin", func(t *testing.T) {
		var second int64
		if err := e.DB.Pool.QueryRow(ctx, `INSERT INTO campaign_runs (campaign_id, scheduled_for, status, started_at, finished_at)
			VALUES ($1, $2, 'sent', $2, $2) RETURNING id`, id, start.Add(-48*time.Hour)).Scan(&second); err != nil {
			t.Fatal(err)
		}
		defer exec(`DELETE FROM campaign_runs WHERE id = $1`, second)
		body := e.get(t, e.client, e.path(id, "/report")).Body
		if !strings.Contains(body, `<th scope="col" class="camp-num">Gross margin</th>`) ||
			!strings.Contains(body, `<td class="camp-num">500.00 NOK</td>
    <td class="camp-num">130.00 NOK</td>`) {
			t.Errorf("the runs table lacks the margin:\n%s", body)
		}
	})
	t.Run("the list shows the progress and revenue", func(t *testing.T) {
		res := e.get(t, e.client, "/console/campaigns")
		for _, want := range []string{"2 / 3 sent", "1 failed", "500.00 NOK"} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("the list lacks %q\n%s", want, res.Body)
			}
		}
	})
	t.Run("a finished run's report does not refresh", func(t *testing.T) {
		exec(`UPDATE campaign_runs SET status = 'sent', finished_at = now() WHERE id = $1`, run)
		exec(`UPDATE campaigns SET status = 'sent' WHERE id = $1`, id)
		res := e.get(t, e.client, e.path(id, "/report"))
		if res.Status != http.StatusOK || strings.Contains(res.Body, `http-equiv="refresh"`) {
			t.Fatalf("%d, refresh still there", res.Status)
		}
	})
	t.Run("once the window has closed two held-out members are still too few for a verdict", func(t *testing.T) {
		exec(`UPDATE campaign_runs SET started_at = started_at - interval '8 days' WHERE id = $1`, run)
		exec(`UPDATE campaign_recipients SET sent_at = sent_at - interval '8 days' WHERE run_id = $1`, run)
		res := e.get(t, e.client, e.path(id, "/report"))
		if strings.Contains(res.Body, "Preliminary") || strings.Contains(res.Body, `<svg class="camp-ci"`) {
			t.Errorf("a final report of 2 held-out members is preliminary or draws a verdict:\n%s", res.Body)
		}
		if !strings.Contains(res.Body, "No verdict about the lift: it needs at least 30 members mailed and 30 held out.") {
			t.Errorf("the report does not say why there is no verdict:\n%s", res.Body)
		}
	})
}

// checkReportMargin checks a campaign's or flow's report page for its gross margin and the
// sales of known cost (each formatted money, or templates.MissingFigure and so never 0), its
// lines of unknown cost ("N <span…>of M</span>"), the note under the figures and the one-line
// explanation, and returns the page unescaped.
func checkReportMargin(t *testing.T, page, gross, known, unknown, note string) string {
	t.Helper()
	body := html.UnescapeString(page)
	for _, want := range []string{
		`<div id="report-margin"><dt>Gross margin</dt><dd>` + gross + `</dd></div>`,
		`<dt>Sales of known cost</dt><dd>` + known + `</dd>`,
		`<dd id="report-margin-unknown">` + unknown + `</dd>`,
		note, templates.Explain("gross_margin"), `href="/console/help/campaign-stats#gross-margin"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	return body
}

func TestConsoleCampaignAccess(t *testing.T) {
	e := newCampaignConsole(t)
	id := e.create(t, e.campaignForm())
	pages := []string{"/console/campaigns", "/console/campaigns/new", e.path(id, ""), e.path(id, "/report")}

	t.Run("without a session the pages go to the login", func(t *testing.T) {
		anon := e.newClient(t)
		for _, p := range pages {
			res := e.get(t, anon, p)
			if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/login") {
				t.Errorf("%s: %d %s", p, res.Status, res.Header.Get("Location"))
			}
		}
	})
	t.Run("a till's API token does not open the console", func(t *testing.T) {
		tok, err := e.DB.CreateAPIKey(context.Background(), models.RoleRegister, "oslo-1", "till")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pages {
			req, _ := http.NewRequest(http.MethodGet, e.URL+p, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if res := e.do(t, e.newClient(t), req); res.Status != http.StatusSeeOther {
				t.Errorf("%s with a register token: %d", p, res.Status)
			}
		}
	})
	t.Run("an admin may use the pages", func(t *testing.T) {
		admin, _ := e.loginAs(t, "admin")
		for _, p := range pages {
			if res := e.get(t, admin, p); res.Status != http.StatusOK {
				t.Errorf("%s as admin: %d", p, res.Status)
			}
		}
	})
	t.Run("a form posted without the CSRF token is refused", func(t *testing.T) {
		for _, p := range []string{"/console/campaigns", e.path(id, ""), e.path(id, "/schedule"), e.path(id, "/cancel"), e.path(id, "/test")} {
			res := e.postForm(t, e.client, p, "", e.campaignForm())
			if res.Status != http.StatusForbidden {
				t.Errorf("%s without CSRF: %d", p, res.Status)
			}
		}
		if got := e.status(t, id); got != "draft" {
			t.Errorf("status %s after refused posts", got)
		}
		if n := e.countRows(t, `SELECT count(*) FROM campaigns`); n != 1 {
			t.Errorf("%d campaigns", n)
		}
	})
}

// TestConsoleCampaignInABrowser logs in, writes a campaign, previews it for two sample members
// (the live preview script under the console's CSP), schedules it, lets the dispatcher send it
// to an in-process SMTP server, and reads its report.
func TestConsoleCampaignInABrowser(t *testing.T) {
	e := newCampaignConsole(t)
	bg := context.Background()
	// 157 more mailable members, so that a 25 % holdout has enough members (30) for a verdict.
	if _, err := e.DB.Pool.Exec(bg, `
		INSERT INTO members (card, email, name, status, marketing_consent, source)
		SELECT lpad((7100000000000 + g)::text, 13, '0'), 'fan' || g || '@example.com', 'Fan ' || g, 'active', 'confirmed', 'test'
		FROM generate_series(1, 157) g`); err != nil {
		t.Fatal(err)
	}
	smtp := smtptest.New(t)
	m, err := mailer.New(smtp.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	e.Server.reconfigure(t, func(c *Config) {
		c.Campaigns = CampaignOptions{Mail: m, BaseURL: e.URL, From: "Vinyl shop <news@shop.example>"}
	})
	email := e.createUser(t, "marketer")
	ctx := browsertest.New(t, 1280, 900, "")
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	run("log in",
		chromedp.Navigate(e.URL+"/console/login"),
		chromedp.WaitVisible(`#email`, chromedp.ByID),
		chromedp.SendKeys(`#email`, email, chromedp.ByID),
		chromedp.SendKeys(`#password`, consolePassword, chromedp.ByID),
		chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`header.console nav`, chromedp.ByQuery),
	)
	run("write a campaign",
		chromedp.Navigate(e.URL+"/console/campaigns"),
		chromedp.Click(`a[href="/console/campaigns/new"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#starter-blank`, chromedp.ByID),
		chromedp.Click(`#starter-blank`, chromedp.ByID),
		chromedp.WaitVisible(`#starter-blank[aria-current]`, chromedp.ByQuery),
		chromedp.Click(`#f-text-auto`, chromedp.ByID), // the text is written by hand below
		chromedp.SendKeys(`#f-name`, "Win-back November", chromedp.ByID),
		chromedp.SendKeys(`#f-subject`, "Hi {{.Member.FirstName}}, we miss you", chromedp.ByID),
		chromedp.SetValue(`#f-segment`, strconv.FormatInt(e.segmentID, 10), chromedp.ByID),
		chromedp.SetValue(`#f-holdout`, "25", chromedp.ByID),
		chromedp.SetValue(`#f-html`, "<h1>Hi {{.Member.FirstName}}</h1>\n<p>It has been a while. New records are in, and as a {{with .Member.Tier}}{{.}}{{else}}club{{end}} member you get first pick.</p>\n<p><a href=\"https://shop.example/new\">See what is new</a></p>", chromedp.ByID),
		chromedp.SetValue(`#f-text`, "Hi {{.Member.FirstName}},\n\nIt has been a while. New records are in: https://shop.example/new", chromedp.ByID),
		chromedp.Click(`#f-save`, chromedp.ByID),
		chromedp.WaitVisible(`p.flash`, chromedp.ByQuery),
	)
	var loaded, srcdoc, flash string
	var ok bool
	run("see the live preview for the first sample member",
		chromedp.Text(`p.flash`, &flash, chromedp.ByQuery),
		chromedp.WaitReady(`#camp-preview-frame[data-loaded]`, chromedp.ByQuery),
		chromedp.AttributeValue(`#camp-preview-frame`, "srcdoc", &srcdoc, &ok, chromedp.ByID),
		chromedp.AttributeValue(`#camp-preview-frame`, "data-loaded", &loaded, nil, chromedp.ByID),
	)
	if flash != "Campaign created." || !strings.Contains(srcdoc, "<h1>Hi Kari</h1>") || loaded != strconv.FormatInt(e.members[0], 10) {
		t.Fatalf("flash %q, preview for %s: %q", flash, loaded, srcdoc)
	}
	// Scrolled by script: the page's script may have replaced the frame's node since it was
	// found, and chromedp's ScrollIntoView would hold on to the old one.
	run("show the preview",
		chromedp.Evaluate(`document.getElementById('camp-preview-frame').scrollIntoView(), true`, nil),
		chromedp.Sleep(300*time.Millisecond))
	browsertest.Screenshot(t, ctx, "console-campaign-editor.png")

	var subject string
	run("preview it for another sample member",
		chromedp.Evaluate(`(function () { var s = document.getElementById('p-member'); s.selectedIndex = 1; s.dispatchEvent(new Event('change')); return true; })()`, nil),
		chromedp.Poll(`document.getElementById('camp-preview-subject').textContent === 'Hi Ola, we miss you'`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Text(`#camp-preview-subject`, &subject, chromedp.ByID),
	)
	var id int64
	if err := e.DB.Pool.QueryRow(bg, `SELECT id FROM campaigns WHERE name = 'Win-back November'`).Scan(&id); err != nil {
		t.Fatal(err)
	}

	run("schedule it for tomorrow 09:00 (the form's default)",
		chromedp.Click(`#s-once`, chromedp.ByID),
		chromedp.WaitVisible(`.camp-head .camp-status-scheduled`, chromedp.ByQuery),
		chromedp.Text(`p.flash`, &flash, chromedp.ByQuery),
	)
	if flash != "Campaign scheduled." || e.status(t, id) != "scheduled" {
		t.Fatalf("flash %q, status %s", flash, e.status(t, id))
	}

	// The dispatcher, two days ahead so that tomorrow's send is due, and a sender.
	sendCtx, stop := context.WithCancel(bg)
	var wg sync.WaitGroup
	d := &dispatch.Dispatcher{DB: e.DB, Now: func() time.Time { return time.Now().Add(48 * time.Hour) }, Interval: 50 * time.Millisecond}
	s := &dispatch.Sender{DB: e.DB, Mail: m, BaseURL: e.URL, Secret: []byte("0123456789abcdef0123456789abcdef"),
		DefaultFrom: "Vinyl shop <news@shop.example>", Concurrency: 2, Batch: 10}
	wg.Go(func() { d.Run(sendCtx) })
	wg.Go(func() { s.Run(sendCtx) })
	t.Cleanup(func() { stop(); wg.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for e.status(t, id) != "sent" {
		if time.Now().After(deadline) {
			t.Fatalf("not sent in time: status %s, %d mails", e.status(t, id), smtp.Count())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Purchases after the mails: every third recipient and every fourth held-out member buys.
	rows, err := e.DB.Pool.Query(bg, `SELECT r.member_id, r.held_out FROM campaign_recipients r
		JOIN campaign_runs run ON run.id = r.run_id WHERE run.campaign_id = $1 ORDER BY r.member_id`, id)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		member  int64
		heldOut bool
	}
	var recs []rec
	for rows.Next() {
		var r rec
		if err := rows.Scan(&r.member, &r.heldOut); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	rows.Close()
	var heldOut int
	for i, r := range recs {
		amount := int64(0)
		switch {
		case r.heldOut && i%4 == 0:
			amount = 12000
		case !r.heldOut && i%3 == 0:
			amount = 24900 + int64(i)*100
		}
		if r.heldOut {
			heldOut++
		}
		if amount == 0 {
			continue
		}
		hash := sha256.Sum256(fmt.Appendf(nil, "browser-%d", i))
		if _, err := e.DB.Pool.Exec(bg, `INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, content_hash)
			VALUES ($1, $2, 'sale', now() + interval '2 hours', $3, 'NOK', $4, $5)`,
			e.storeID, fmt.Sprintf("B-%d", i), amount, r.member, hash[:]); err != nil {
			t.Fatal(err)
		}
	}
	if heldOut == 0 || smtp.Count() != len(recs)-heldOut {
		t.Fatalf("%d held out, %d mails for %d recipients", heldOut, smtp.Count(), len(recs))
	}
	// Each purchase is one receipt line: a record whose cost the catalogue knows, or (every
	// third) a gift card it does not, so the report shows a margin and lines of unknown cost.
	for _, q := range []string{
		`INSERT INTO products (sku, name, price_minor, cost_minor) VALUES ('LP-1', 'Blue Train LP', 24900, 15000)`,
		`INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor)
		 SELECT id, 1, CASE WHEN id % 3 = 0 THEN 'GIFT' ELSE 'LP-1' END, 1, amount_minor FROM transactions WHERE txn_id LIKE 'B-%'`,
	} {
		if _, err := e.DB.Pool.Exec(bg, q); err != nil {
			t.Fatal(err)
		}
	}

	// Right after the send the report is preliminary: no interval, no verdict.
	var figures, note string
	run("open its report",
		chromedp.Navigate(e.URL+"/console/campaigns"),
		chromedp.Click(`a[href="/console/campaigns/`+strconv.FormatInt(id, 10)+`/report"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#camp-preliminary`, chromedp.ByQuery),
		chromedp.Text(`#camp-preliminary`, &note, chromedp.ByQuery),
	)
	if !strings.HasPrefix(note, "Preliminary — final on ") {
		t.Errorf("preliminary note %q", note)
	}
	// Eight days later (the sends and the purchases moved back), the window has closed.
	for _, q := range []string{
		`UPDATE campaign_runs SET started_at = started_at - interval '8 days', finished_at = finished_at - interval '8 days' WHERE campaign_id = $1`,
		`UPDATE campaign_recipients SET sent_at = sent_at - interval '8 days' WHERE run_id IN (SELECT id FROM campaign_runs WHERE campaign_id = $1)`,
		`UPDATE transactions SET occurred_at = occurred_at - interval '8 days' WHERE txn_id LIKE 'B-%' AND $1::bigint IS NOT NULL`,
	} {
		if _, err := e.DB.Pool.Exec(bg, q, id); err != nil {
			t.Fatal(err)
		}
	}
	var margin, unknown string
	run("see the final report",
		chromedp.Reload(),
		chromedp.WaitVisible(`svg.camp-ci`, chromedp.ByQuery),
		chromedp.Text(`dl.camp-figures`, &figures, chromedp.ByQuery),
		chromedp.Text(`#report-margin dd`, &margin, chromedp.ByQuery),
		chromedp.Text(`#report-margin-unknown`, &unknown, chromedp.ByQuery),
	)
	wantSent := fmt.Sprintf("Sent\n%d", len(recs)-heldOut)
	if !strings.Contains(figures, wantSent) {
		t.Errorf("figures %q lack %q", figures, wantSent)
	}
	if !strings.HasSuffix(margin, " NOK") || !regexp.MustCompile(`^\d+ of \d+$`).MatchString(unknown) {
		t.Errorf("gross margin %q, lines of unknown cost %q", margin, unknown)
	}
	browsertest.Screenshot(t, ctx, "console-campaign-report.png")
}
