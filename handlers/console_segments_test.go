package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regulars/regulars/handlers/browsertest"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/demo"
)

// newSegmentsConsole is a console over a small demo shop (stores, members, purchases).
func newSegmentsConsole(t *testing.T) *consoleClient {
	t.Helper()
	cc := newConsole(t)
	if _, err := demo.Fill(context.Background(), cc.DB, demo.Options{Members: 200, Days: 120}); err != nil {
		t.Fatalf("demo: %v", err)
	}
	return cc
}

// segCountRules counts a tree's members and mailable members directly, as of now.
func segCountRules(t *testing.T, db *models.DB, rules string) (members, mailable int64) {
	t.Helper()
	tree, err := segments.Parse([]byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	asOf := time.Now()
	if members, err = segments.Count(ctx, db, tree, asOf); err != nil {
		t.Fatal(err)
	}
	if mailable, err = segments.CountMailable(ctx, db, tree, asOf); err != nil {
		t.Fatal(err)
	}
	return members, mailable
}

func segSaved(t *testing.T, db *models.DB) []segments.Counted {
	t.Helper()
	list, err := segments.List(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// segWaitCounted waits (generously) for segment id's current rules to be counted in the
// background and returns it with its cached counts.
func segWaitCounted(t *testing.T, db *models.DB, id int64) segments.Counted {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := segments.FindCounted(context.Background(), db, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.CountedAt != nil {
			return *c
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment %d not counted after a minute", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const segOsloRules = `{"all": [{"field": "home_store", "op": "eq", "value": "oslo-1"}]}`

func TestConsoleSegmentPreview(t *testing.T) {
	cc := newSegmentsConsole(t)
	client, _ := cc.loginAs(t, models.RoleMarketer)

	t.Run("the count equals segments.Count and comes with a sample of ten", func(t *testing.T) {
		for _, rules := range []string{
			segOsloRules,
			`{"any": [{"field": "home_store", "op": "in", "value": ["bergen-1", "trondheim-1"]}, {"not": {"field": "orders_365d", "op": "gte", "value": 1}}]}`,
			`{"field": "marketing_consent", "op": "eq", "value": "confirmed"}`,
		} {
			res := cc.get(t, client, "/console/api/segments/preview?rules="+url.QueryEscape(rules))
			if res.Status != http.StatusOK {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			var got segmentCounts
			if err := json.Unmarshal([]byte(res.Body), &got); err != nil {
				t.Fatal(err)
			}
			members, mailable := segCountRules(t, cc.DB, rules)
			if got.Members != members || got.Mailable != mailable || members == 0 {
				t.Errorf("%s: %d members, %d mailable; want %d and %d", rules, got.Members, got.Mailable, members, mailable)
			}
			if want := min(members, segmentPreviewSize); int64(len(got.Sample)) != want {
				t.Errorf("%s: a sample of %d, want %d", rules, len(got.Sample), want)
			}
		}
	})

	t.Run("invalid rules are a 422 naming the path", func(t *testing.T) {
		res := cc.get(t, client, "/console/api/segments/preview?rules="+url.QueryEscape(`{"all": [{"field": "shoe_size", "op": "eq", "value": 44}]}`))
		if res.Status != http.StatusUnprocessableEntity || !strings.Contains(res.Body, `"rules.all.0.field"`) {
			t.Errorf("status %d, body %s", res.Status, res.Body)
		}
		if res := cc.get(t, client, "/console/api/segments/preview"); res.Status != http.StatusUnprocessableEntity {
			t.Errorf("no rules: status %d", res.Status)
		}
	})

	t.Run("it needs a session", func(t *testing.T) {
		res := cc.get(t, cc.newClient(t), "/console/api/segments/preview?rules="+url.QueryEscape(segOsloRules))
		if res.Status == http.StatusOK || strings.Contains(res.Body, `"members"`) {
			t.Errorf("status %d without a session: %s", res.Status, res.Body)
		}
	})
}

var segmentIDInLocation = regexp.MustCompile(`^/console/segments/(\d+)\?saved=1$`)

func TestConsoleSegmentForms(t *testing.T) {
	cc := newSegmentsConsole(t)
	client, csrf := cc.loginAs(t, models.RoleMarketer) // marketers build segments

	t.Run("an unauthenticated visitor is sent to the login page", func(t *testing.T) {
		for _, path := range []string{"/console/segments", "/console/segments/new"} {
			res := cc.get(t, cc.newClient(t), path)
			if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/login") {
				t.Errorf("%s: status %d, Location %q", path, res.Status, res.Header.Get("Location"))
			}
		}
	})

	t.Run("the builder offers the fields and works without script", func(t *testing.T) {
		res := cc.get(t, client, "/console/segments/new")
		if res.Status != http.StatusOK {
			t.Fatalf("status %d", res.Status)
		}
		for _, want := range []string{`<textarea id="segment-rules" name="rules"`, `data-builder="`, "days_since_last_purchase",
			`src="/static/console-segments.js"`, `name="action" value="preview"`, "oslo-1"} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("the builder lacks %q", want)
			}
		}
		if strings.Contains(res.Body, "style=") || regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(res.Body) {
			t.Error("the builder has an inline style attribute or script")
		}
	})

	var id string
	t.Run("a marketer creates a segment through the form", func(t *testing.T) {
		res := cc.postForm(t, client, "/console/segments", csrf, url.Values{
			"name": {"Oslo members"}, "description": {"home store oslo-1"}, "rules": {segOsloRules}, "action": {"save"}})
		m := segmentIDInLocation.FindStringSubmatch(res.Header.Get("Location"))
		if res.Status != http.StatusSeeOther || m == nil {
			t.Fatalf("status %d, Location %q\n%s", res.Status, res.Header.Get("Location"), res.Body)
		}
		id = m[1]
		page := cc.get(t, client, res.Header.Get("Location"))
		members, mailable := segCountRules(t, cc.DB, segOsloRules)
		for _, want := range []string{"Segment saved", `value="Oslo members"`, `<span id="segment-count" class="count">` + segItoa(members) + "</span>",
			`<span id="segment-mailable" class="count">` + segItoa(mailable) + "</span>", `action="/console/segments/` + id + `/delete"`} {
			if !strings.Contains(page.Body, want) {
				t.Errorf("the saved segment's page lacks %q", want)
			}
		}
		list := cc.get(t, client, "/console/segments")
		if !strings.Contains(list.Body, `<a href="/console/segments/`+id+`">Oslo members</a>`) || !strings.Contains(list.Body, ">"+segItoa(members)+"<") {
			t.Errorf("the list does not show the segment with its count:\n%s", list.Body)
		}
	})

	t.Run("invalid rules are shown by the field with their path, and nothing is saved", func(t *testing.T) {
		for _, tt := range []struct {
			rules, want string
		}{
			{`{"all": [{"field": "shoe_size", "op": "eq", "value": 44}]}`, "<code>rules.all.0.field</code>"},
			{`{"all": [{"field": "home_store", "op": "eq"`, "not valid JSON"},
			{``, "Rules required"},
		} {
			res := cc.postForm(t, client, "/console/segments", csrf, url.Values{"name": {"Broken"}, "rules": {tt.rules}})
			if res.Status != http.StatusUnprocessableEntity {
				t.Fatalf("%q: status %d", tt.rules, res.Status)
			}
			for _, want := range []string{tt.want, `id="segment-rules-error"`, `aria-invalid="true"`, `value="Broken"`, "The segment was not saved"} {
				if !strings.Contains(res.Body, want) {
					t.Errorf("%q: the page lacks %q", tt.rules, want)
				}
			}
		}
		if n := len(segSaved(t, cc.DB)); n != 1 {
			t.Errorf("%d segments stored, want 1", n)
		}
	})

	t.Run("a taken name is shown by the name field", func(t *testing.T) {
		res := cc.postForm(t, client, "/console/segments", csrf, url.Values{"name": {"OSLO MEMBERS"}, "rules": {segOsloRules}})
		if res.Status != http.StatusConflict || !strings.Contains(res.Body, `id="segment-name-error"`) {
			t.Errorf("status %d\n%s", res.Status, res.Body)
		}
	})

	t.Run("the preview button counts without saving", func(t *testing.T) {
		rules := `{"field": "home_store", "op": "eq", "value": "bergen-1"}`
		res := cc.postForm(t, client, "/console/segments", csrf, url.Values{"name": {"Bergen"}, "rules": {rules}, "action": {"preview"}})
		members, _ := segCountRules(t, cc.DB, rules)
		if res.Status != http.StatusOK || !strings.Contains(res.Body, `class="count">`+segItoa(members)+"</span>") || !strings.Contains(res.Body, "not saved yet") {
			t.Errorf("status %d\n%s", res.Status, res.Body)
		}
		if n := len(segSaved(t, cc.DB)); n != 1 {
			t.Errorf("%d segments stored, want 1", n)
		}
	})

	t.Run("a form without the CSRF token changes nothing", func(t *testing.T) {
		res := cc.postForm(t, client, "/console/segments", "", url.Values{"name": {"Sneaky"}, "rules": {segOsloRules}})
		if res.Status != http.StatusForbidden {
			t.Errorf("status %d, want 403", res.Status)
		}
		if res := cc.postForm(t, client, "/console/segments/"+id+"/delete", "", nil); res.Status != http.StatusForbidden {
			t.Errorf("delete: status %d, want 403", res.Status)
		}
		if n := len(segSaved(t, cc.DB)); n != 1 {
			t.Errorf("%d segments stored, want 1", n)
		}
	})

	t.Run("the form updates the segment", func(t *testing.T) {
		rules := `{"any": [{"field": "home_store", "op": "eq", "value": "oslo-1"}, {"field": "home_store", "op": "eq", "value": "oslo-2"}]}`
		res := cc.postForm(t, client, "/console/segments/"+id, csrf, url.Values{"name": {"Oslo, both shops"}, "description": {""}, "rules": {rules}})
		if res.Status != http.StatusSeeOther || res.Header.Get("Location") != "/console/segments/"+id+"?saved=1" {
			t.Fatalf("status %d, Location %q\n%s", res.Status, res.Header.Get("Location"), res.Body)
		}
		list := segSaved(t, cc.DB)
		if len(list) != 1 || list[0].Name != "Oslo, both shops" || list[0].Description != "" {
			t.Errorf("stored %+v, want the new name and no description", list)
		}
		// The save counts the new rules in the background, for the list.
		members, mailable := segCountRules(t, cc.DB, rules)
		if got := segWaitCounted(t, cc.DB, list[0].ID); *got.Members != members || *got.Mailable != mailable {
			t.Errorf("cached counts %d/%d, want %d/%d", *got.Members, *got.Mailable, members, mailable)
		}
		bad := cc.postForm(t, client, "/console/segments/"+id, csrf, url.Values{"name": {"x"}, "rules": {`{"all": []}`}})
		if bad.Status != http.StatusUnprocessableEntity || !strings.Contains(bad.Body, "rules.all") {
			t.Errorf("an empty group: status %d", bad.Status)
		}
	})

	t.Run("an unknown segment is 404", func(t *testing.T) {
		if res := cc.get(t, client, "/console/segments/999999"); res.Status != http.StatusNotFound {
			t.Errorf("status %d", res.Status)
		}
	})

	t.Run("the delete button deletes the segment", func(t *testing.T) {
		res := cc.postForm(t, client, "/console/segments/"+id+"/delete", csrf, nil)
		if res.Status != http.StatusSeeOther || res.Header.Get("Location") != "/console/segments?deleted=1" {
			t.Fatalf("status %d, Location %q", res.Status, res.Header.Get("Location"))
		}
		if n := len(segSaved(t, cc.DB)); n != 0 {
			t.Errorf("%d segments stored, want 0", n)
		}
		list := cc.get(t, client, res.Header.Get("Location"))
		if !strings.Contains(list.Body, "Segment deleted") || !strings.Contains(list.Body, "No saved segments yet") {
			t.Errorf("the list after deleting:\n%s", list.Body)
		}
	})

	t.Run("an admin may build segments too", func(t *testing.T) {
		admin, acsrf := cc.loginAs(t, models.RoleAdmin)
		res := cc.postForm(t, admin, "/console/segments", acsrf, url.Values{"name": {"Admin's"}, "rules": {segOsloRules}})
		if res.Status != http.StatusSeeOther {
			t.Errorf("status %d", res.Status)
		}
	})
}

func segItoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestConsoleBrowserDashboardAndSegmentBuilder logs in with Chromium, looks at the dashboard's
// charts drawn from real snapshots, and builds a segment with the visual builder, watching its
// live count.
func TestConsoleBrowserDashboardAndSegmentBuilder(t *testing.T) {
	cc, _ := newDashboardConsole(t)
	email := cc.createUser(t, models.RoleMarketer)
	ctx := browsertest.New(t, 1280, 900, "")

	var (
		mu   sync.Mutex
		errs []string // JavaScript exceptions and console errors (a CSP violation is one)
	)
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			errs = append(errs, ev.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError {
				errs = append(errs, "console error")
			}
		}
	})
	jsErrors := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(errs) }

	var bars, tableRows int
	if err := chromedp.Run(ctx,
		chromedp.Navigate(cc.URL+"/console/login"),
		chromedp.WaitVisible(`#email`, chromedp.ByID),
		chromedp.SendKeys(`#email`, email, chromedp.ByID),
		chromedp.SendKeys(`#password`, consolePassword, chromedp.ByID),
		chromedp.Submit(`#password`, chromedp.ByID),
		chromedp.WaitVisible(`header.console nav`, chromedp.ByQuery),
		chromedp.Navigate(cc.URL+"/console/?family=store&sort=clv_predicted&dir=desc"),
		chromedp.WaitVisible(`#dash-table`, chromedp.ByID),
		chromedp.Evaluate(`document.querySelectorAll('#dash-table tbody tr').length`, &tableRows),
		chromedp.Evaluate(`document.querySelectorAll('svg.chart-bar .bar rect').length`, &bars),
	); err != nil {
		t.Fatalf("log in and open the dashboard: %v", err)
	}
	if tableRows != 4 || bars == 0 {
		t.Errorf("the dashboard shows %d store rows and %d bars", tableRows, bars)
	}
	browsertest.Screenshot(t, ctx, "console-dashboard.png")

	// The builder: a new segment starts with "status is active"; add "home store is oslo-1" and
	// wait for the live count to be what segments.Count says.
	rules := `{"all": [{"field": "status", "op": "eq", "value": "active"}, {"field": "home_store", "op": "eq", "value": "oslo-1"}]}`
	want, wantMailable := segCountRules(t, cc.DB, rules)
	var textarea string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(cc.URL+"/console/segments/new"),
		chromedp.WaitVisible(`#rule-builder .rb-group`, chromedp.ByQuery),
		chromedp.SendKeys(`#segment-name`, "Active in Oslo", chromedp.ByID),
		chromedp.Click(`#rule-builder .rb-add-rule`, chromedp.ByQuery),
		chromedp.WaitVisible(`#rule-builder .rb-rule:nth-of-type(2) input`, chromedp.ByQuery),
		chromedp.SetValue(`#rule-builder .rb-rule:nth-of-type(2) .rb-field`, "home_store", chromedp.ByQuery),
		chromedp.SendKeys(`#rule-builder .rb-rule:nth-of-type(2) input`, "oslo-1", chromedp.ByQuery),
		chromedp.Poll(`document.getElementById('segment-count').textContent === '`+segItoa(want)+`' && document.getElementById('segment-mailable').textContent === '`+segItoa(wantMailable)+`'`,
			nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Value(`#segment-rules`, &textarea, chromedp.ByID),
	); err != nil {
		var count, mailable string
		_ = chromedp.Run(ctx, chromedp.Text(`#segment-preview`, &count, chromedp.ByID), chromedp.Value(`#segment-rules`, &mailable, chromedp.ByID))
		t.Fatalf("build the segment: %v (want %d members, %d mailable; preview %q, rules %s; js errors %v)", err, want, wantMailable, count, mailable, jsErrors())
	}
	got, err := segments.Parse([]byte(textarea))
	if err != nil {
		t.Fatalf("the builder wrote rules that do not parse: %v\n%s", err, textarea)
	}
	wantTree, _ := segments.Parse([]byte(rules))
	if gj, wj := segMustJSON(t, got), segMustJSON(t, wantTree); gj != wj {
		t.Errorf("the builder wrote %s, want %s", gj, wj)
	}
	browsertest.Screenshot(t, ctx, "console-segment-builder.png")

	// A new group starts with a rule without a value: the live preview names the path, and
	// removing the group clears it.
	if err := chromedp.Run(ctx,
		chromedp.Click(`#rule-builder .rb-add-group`, chromedp.ByQuery),
		chromedp.WaitVisible(`#rule-builder .rb-nested .rb-rule`, chromedp.ByQuery),
		chromedp.Poll(`document.getElementById('segment-preview-error').textContent.includes('rules.all.2.any.0.value')`,
			nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Click(`#rule-builder .rb-nested .rb-group-head .rb-remove`, chromedp.ByQuery),
		chromedp.Poll(`document.getElementById('segment-preview-error').textContent === '' && !document.querySelector('#rule-builder .rb-nested')`,
			nil, chromedp.WithPollingTimeout(20*time.Second)),
	); err != nil {
		var msg string
		_ = chromedp.Run(ctx, chromedp.Text(`#segment-preview-error`, &msg, chromedp.ByID))
		t.Fatalf("add and remove a group: %v (preview error %q)", err, msg)
	}

	var listed string
	if err := chromedp.Run(ctx,
		chromedp.Click(`button[name="action"][value="save"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`.flash`, chromedp.ByQuery),
		chromedp.Navigate(cc.URL+"/console/segments"),
		chromedp.WaitVisible(`#segment-list`, chromedp.ByID),
		chromedp.Text(`#segment-list`, &listed, chromedp.ByID),
	); err != nil {
		t.Fatalf("save the segment: %v", err)
	}
	if !strings.Contains(listed, "Active in Oslo") || !strings.Contains(listed, segItoa(want)) {
		t.Errorf("the list shows %q, want the new segment with %d members", listed, want)
	}
	browsertest.Screenshot(t, ctx, "console-segments.png")
	if errs := jsErrors(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %v", errs)
	}
}

func segMustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A saved segment too slow to count while the page waits still opens, with its cached counts
// and how old they are, or "counting…" before the first count, so it can be changed or deleted.
func TestConsoleSlowSegmentOpensWithCachedCounts(t *testing.T) {
	cc := newSegmentsConsole(t)
	// The live count gets half of the limit; the rest of the page the other half, enough on a
	// busy machine.
	cc.Server.reconfigure(t, func(c *Config) { c.StatementTimeout = 4 * time.Second })
	fixed := time.Now()
	cc.DB.Now = func() time.Time { return fixed } // so the counts are "counted just now" however slow the machine
	client, _ := cc.loginAs(t, models.RoleMarketer)
	client.Timeout = time.Minute // generous: only a page that hangs fails on it
	ctx := context.Background()
	counted, err := segments.Create(ctx, cc.DB, segments.SavedInput{Name: "Counted", Rules: json.RawMessage(segOsloRules)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := segments.Recount(ctx, cc.DB, counted.ID, time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	uncounted, err := segments.Create(ctx, cc.DB, segments.SavedInput{Name: "Uncounted", Rules: json.RawMessage(segOsloRules)})
	if err != nil {
		t.Fatal(err)
	}
	members, _ := segCountRules(t, cc.DB, segOsloRules)
	// Counting reads members; holding them makes every live count too slow.
	tx, err := cc.DB.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE members IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	res := cc.get(t, client, "/console/segments/"+strconv.FormatInt(counted.ID, 10))
	want := `<span id="segment-count" class="count">` + strconv.FormatInt(members, 10) + `</span>`
	if res.Status != http.StatusOK || !strings.Contains(res.Body, want) || !strings.Contains(res.Body, "counted just now") {
		t.Errorf("counted segment: status %d, want 200 with %s and how fresh\n%s", res.Status, want, res.Body)
	}
	res = cc.get(t, client, "/console/segments/"+strconv.FormatInt(uncounted.ID, 10))
	if res.Status != http.StatusOK || !strings.Contains(res.Body, "counting…") {
		t.Errorf("uncounted segment: status %d, want 200 with counting…\n%s", res.Status, res.Body)
	}
	list := cc.get(t, client, "/console/segments")
	if list.Status != http.StatusOK || !strings.Contains(list.Body, "counted just now") || !strings.Contains(list.Body, "counting…") {
		t.Errorf("list: status %d, want both segments, one counted and one counting\n%s", list.Status, list.Body)
	}
}

func TestCountedAgo(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	for _, tc := range []struct {
		at   *time.Time
		want string
	}{
		{nil, "counting…"},
		{at(20 * time.Second), "counted just now"},
		{at(3*time.Minute + 10*time.Second), "counted 3 min ago"},
		{at(5 * time.Hour), "counted 5 h ago"},
		{at(72 * time.Hour), "counted on 2026-12-03"},
	} {
		if got := countedAgo(now, tc.at); got != tc.want {
			t.Errorf("countedAgo(%v) = %q, want %q", tc.at, got, tc.want)
		}
	}
}
