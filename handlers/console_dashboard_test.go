package handlers

import (
	"context"
	"encoding/json"
	"html"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/jobs/metrics"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/demo"
	"github.com/regulars/regulars/templates"
)

// dashOslo is the demo's (and the metrics runs') time zone.
func dashOslo(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// newDashboardConsole is a console over a small demo shop with a saved segment and two metrics
// snapshots, 30 days apart, computed by the real job. It returns the newest snapshot.
func newDashboardConsole(t *testing.T) (*consoleClient, *metrics.Snapshot) {
	t.Helper()
	cc := newConsole(t)
	ctx := context.Background()
	loc := dashOslo(t)
	cc.Server.reconfigure(t, func(c *Config) { c.Timezone = loc })
	if _, err := demo.Fill(ctx, cc.DB, demo.Options{Members: 1000, Days: 500}); err != nil {
		t.Fatalf("demo: %v", err)
	}
	if _, err := segments.Create(ctx, cc.DB, segments.SavedInput{Name: "Oslo <regulars>",
		Rules: json.RawMessage(`{"all": [{"field": "home_store", "op": "eq", "value": "oslo-1"}, {"field": "orders_365d", "op": "gte", "value": 2}]}`)}); err != nil {
		t.Fatal(err)
	}
	today := time.Now().In(loc)
	for _, asOf := range []time.Time{today.AddDate(0, 0, -30), today} {
		if _, err := metrics.Compute(ctx, cc.DB, metrics.Options{AsOf: asOf, Timezone: loc}); err != nil {
			t.Fatalf("metrics as of %s: %v", asOf.Format(time.DateOnly), err)
		}
	}
	snap, err := metrics.Latest(ctx, cc.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cc, snap
}

var dashRowRE = regexp.MustCompile(`<tr data-segment="([^"]+)">`)

// dashRowOrder is the segments of the table's rows, top to bottom.
func dashRowOrder(body string) []string {
	var out []string
	for _, m := range dashRowRE.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// dashSVG is the chart whose aria-label starts with label.
func dashSVG(t *testing.T, body, label string) string {
	t.Helper()
	i := strings.Index(body, `aria-label="`+label)
	if i < 0 {
		t.Fatalf("no chart %q in the page", label)
	}
	start := strings.LastIndex(body[:i], "<svg")
	end := strings.Index(body[i:], "</svg>")
	return body[start : i+end+len("</svg>")]
}

func TestConsoleDashboard(t *testing.T) {
	cc, snap := newDashboardConsole(t)
	client, _ := cc.loginAs(t, models.RoleMarketer)
	byName := map[string]metrics.SegmentMetrics{}
	for _, m := range snap.Segments {
		byName[m.Segment] = m
	}

	t.Run("an unauthenticated visitor is sent to the login page", func(t *testing.T) {
		res := cc.get(t, cc.newClient(t), "/console/")
		if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/login") {
			t.Fatalf("status %d, Location %q; want 303 to the login page", res.Status, res.Header.Get("Location"))
		}
	})

	res := cc.get(t, client, "/console/")
	if res.Status != http.StatusOK {
		t.Fatalf("GET /console/: %d\n%s", res.Status, res.Body)
	}

	t.Run("the table lists every segment of the snapshot with its figures", func(t *testing.T) {
		rows := dashRowOrder(res.Body)
		if len(rows) != len(snap.Segments) {
			t.Fatalf("%d rows, want the snapshot's %d segments", len(rows), len(snap.Segments))
		}
		all := byName["all"]
		for _, want := range []string{"As of", snap.Run.AsOf.Format(time.DateOnly), "Regulars Oslo Sentrum", "Segment Oslo &lt;regulars&gt;",
			"RFM Champions", `aria-sort="ascending"`, "?dir=desc&amp;sort=clv_predicted", " NOK",
			templates.FormatMoneyFloat(*all.CLVHistoric, "NOK"), templates.FormatPercent(*all.RepeatPurchaseRate)} {
			if !strings.Contains(res.Body, want) && !strings.Contains(strings.ToLower(res.Body), strings.ToLower(want)) {
				t.Errorf("the page does not show %q", want)
			}
		}
		// The demo's receipts have lines, so UPT shows beside the margin columns (their
		// figures are jobs/metrics' TestUnitsAndMargins).
		if all.UnitsPerTransaction == nil {
			t.Fatal("all: no UPT; the demo's receipts have lines")
		}
		for _, want := range []string{">UPT<", ">Gross margin<", ">CLV margin historic<", ">Lines of unknown cost<",
			`<td class="num">` + strconv.FormatFloat(*all.UnitsPerTransaction, 'f', 2, 64) + `</td>`} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("the page does not show %q", want)
			}
		}
	})

	t.Run("sorting by a column orders the rows, undefined figures last", func(t *testing.T) {
		for _, dir := range []string{"desc", "asc"} {
			page := cc.get(t, client, "/console/?sort=clv_historic&dir="+dir)
			got := dashRowOrder(page.Body)
			want := slices.Clone(snap.Segments)
			slices.SortStableFunc(want, func(a, b metrics.SegmentMetrics) int {
				switch {
				case a.CLVHistoric == nil && b.CLVHistoric == nil:
					return 0
				case a.CLVHistoric == nil:
					return 1
				case b.CLVHistoric == nil:
					return -1
				}
				if dir == "desc" {
					return -cmpFloat(*a.CLVHistoric, *b.CLVHistoric)
				}
				return cmpFloat(*a.CLVHistoric, *b.CLVHistoric)
			})
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i := range want {
				g, w := byName[got[i]].CLVHistoric, want[i].CLVHistoric
				if (g == nil) != (w == nil) || (g != nil && *g != *w) {
					t.Fatalf("dir %s: row %d is %s (CLV %v), want CLV %v; order %v", dir, i, got[i], fmtPtr(g), fmtPtr(w), got)
				}
			}
			if !strings.Contains(page.Body, `aria-sort="`+map[string]string{"asc": "ascending", "desc": "descending"}[dir]+`"><a href="/console/?dir=`) {
				t.Errorf("dir %s: the CLV historic heading is not marked as sorted", dir)
			}
		}
	})

	t.Run("the family filter keeps that family's segments", func(t *testing.T) {
		got := dashRowOrder(cc.get(t, client, "/console/?family=store").Body)
		if len(got) != 4 {
			t.Fatalf("rows %v, want the 4 demo stores", got)
		}
		for _, s := range got {
			if !strings.HasPrefix(s, "store:") {
				t.Errorf("row %s in the store family", s)
			}
		}
	})

	t.Run("the bar charts have one bar per segment of the family", func(t *testing.T) {
		page := cc.get(t, client, "/console/?family=rfm").Body
		rows := dashRowOrder(page)
		for _, chart := range []struct {
			label string
			value func(m metrics.SegmentMetrics) *float64
		}{
			{"CLV historic per segment", func(m metrics.SegmentMetrics) *float64 { return m.CLVHistoric }},
			{"Churn rate per segment", func(m metrics.SegmentMetrics) *float64 { return m.ChurnRate }},
			{"Repeat purchase rate per segment", func(m metrics.SegmentMetrics) *float64 { return m.RepeatPurchaseRate }},
		} {
			want := 0
			for _, s := range rows {
				if v := chart.value(byName[s]); v != nil && !math.IsNaN(*v) {
					want++
				}
			}
			svg := dashSVG(t, page, chart.label)
			if got := strings.Count(svg, `<g class="bar">`); got != want || want == 0 {
				t.Errorf("%s: %d bars, want %d (one per rfm segment with a figure)", chart.label, got, want)
			}
			if !strings.Contains(svg, `role="img"`) || !strings.Contains(svg, "<title") || !strings.Contains(svg, "<desc") {
				t.Errorf("%s is not an accessible image", chart.label)
			}
		}
	})

	t.Run("the line charts draw the stored snapshots of the chosen segment", func(t *testing.T) {
		page := cc.get(t, client, "/console/?segment=store:oslo-1").Body
		svg := dashSVG(t, page, "CLV over time: Regulars Oslo Sentrum")
		if strings.Contains(svg, "chart-empty") || strings.Count(svg, "<circle") < 2 || !strings.Contains(svg, "<polyline") {
			t.Errorf("the CLV line chart does not show two snapshots:\n%s", svg)
		}
		if !strings.Contains(page, `<option value="store:oslo-1" selected>`) {
			t.Errorf("the trend segment is not selected in the form")
		}
	})

	t.Run("the page has no inline style or script (CSP)", func(t *testing.T) {
		if strings.Contains(res.Body, "style=") || regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(res.Body) {
			t.Error("the dashboard has an inline style attribute or script")
		}
		if !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Error("no CSP header")
		}
	})

	t.Run("a marketer sees no button that runs the metrics", func(t *testing.T) {
		if strings.Contains(res.Body, `action="/console/metrics/run"`) {
			t.Error("a marketer is offered the run button")
		}
	})
}

func TestConsoleDashboardEmptyAndRun(t *testing.T) {
	cc := newConsole(t)
	cc.Server.reconfigure(t, func(c *Config) { c.Timezone = dashOslo(t) })
	admin, csrf := cc.loginAs(t, models.RoleAdmin)
	marketer, mcsrf := cc.loginAs(t, models.RoleMarketer)

	t.Run("without a run the page says how to compute one", func(t *testing.T) {
		res := cc.get(t, marketer, "/console/")
		if res.Status != http.StatusOK || !strings.Contains(res.Body, "No metrics yet") || !strings.Contains(res.Body, "regulars metrics run") {
			t.Fatalf("status %d, body:\n%s", res.Status, res.Body)
		}
		if strings.Contains(res.Body, `action="/console/metrics/run"`) {
			t.Error("a marketer is offered the run button")
		}
		if !strings.Contains(cc.get(t, admin, "/console/").Body, `action="/console/metrics/run"`) {
			t.Error("an admin is not offered the run button")
		}
	})

	t.Run("a marketer may not run the metrics", func(t *testing.T) {
		if res := cc.postForm(t, marketer, "/console/metrics/run", mcsrf, nil); res.Status != http.StatusForbidden {
			t.Errorf("status %d, want 403", res.Status)
		}
	})

	t.Run("the run button needs the CSRF token", func(t *testing.T) {
		if res := cc.postForm(t, admin, "/console/metrics/run", "", nil); res.Status != http.StatusForbidden {
			t.Errorf("status %d, want 403", res.Status)
		}
	})

	t.Run("an admin runs the metrics and sees the snapshot", func(t *testing.T) {
		res := cc.postForm(t, admin, "/console/metrics/run", csrf, nil)
		if res.Status != http.StatusSeeOther || res.Header.Get("Location") != "/console/?ran=1" {
			t.Fatalf("status %d, Location %q", res.Status, res.Header.Get("Location"))
		}
		page := cc.get(t, admin, res.Header.Get("Location"))
		if !strings.Contains(page.Body, "Metrics computed") || len(dashRowOrder(page.Body)) == 0 {
			t.Fatalf("no flash or no rows after the run:\n%s", page.Body)
		}
		if _, err := metrics.Latest(context.Background(), cc.DB, nil); err != nil {
			t.Errorf("no snapshot stored: %v", err)
		}
	})
}

func TestSortDashRows(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	rows := []dashRow{
		{Label: "b", SegmentMetrics: metrics.SegmentMetrics{Segment: "b", Members: 2, ChurnRate: f(0.5)}},
		{Label: "a", SegmentMetrics: metrics.SegmentMetrics{Segment: "a", Members: 3, ChurnRate: nil}},
		{Label: "C", SegmentMetrics: metrics.SegmentMetrics{Segment: "C", Members: 1, ChurnRate: f(0.1)}},
	}
	order := func() string {
		var s []string
		for _, r := range rows {
			s = append(s, r.Label)
		}
		return strings.Join(s, "")
	}
	cols := dashColumns()
	for _, tt := range []struct {
		key  string
		desc bool
		want string
	}{
		{"segment", false, "abC"},
		{"segment", true, "Cba"},
		{"members", true, "abC"},
		{"members", false, "Cba"},
		{"churn_rate", false, "Cba"}, // undefined last
		{"churn_rate", true, "bCa"},  // undefined last either way
	} {
		sortDashRows(rows, cols, tt.key, tt.desc)
		if got := order(); got != tt.want {
			t.Errorf("sort by %s desc=%v: %s, want %s", tt.key, tt.desc, got, tt.want)
		}
	}
}

func TestSegmentLabel(t *testing.T) {
	names := map[int64]string{7: "Lapsed"}
	stores := map[string]string{"oslo-1": "Oslo Sentrum"}
	for in, want := range map[string]string{
		"all": "All members", "store:oslo-1": "Oslo Sentrum", "store:gone-1": "Store gone-1", "tier:Gold": "Tier Gold", "rfm:At risk": "RFM At risk",
		"cohort:2025-Q1": "Joined 2025-Q1", "segment:7": "Segment Lapsed", "segment:8": "Segment #8 (deleted)",
	} {
		if got := segmentLabel(in, names, stores); got != want {
			t.Errorf("segmentLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func fmtPtr(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}
