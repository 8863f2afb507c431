package handlers

// The console's dashboard: the latest metrics snapshot as a sortable table of segments, with bar
// charts per segment and line charts over time, all rendered on the server (templates/svgchart)
// so the page works without script.

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/jobs/metrics"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/templates"
	"github.com/regulars/regulars/templates/svgchart"
)

// seriesYears is how far back the line charts reach from the snapshot's date.
const seriesYears = 2

// dashColumn is one sortable column of the segments table.
type dashColumn struct {
	Key      string
	Label    string
	Numeric  bool
	Href     string // the link that sorts by this column (toggling the direction if it already does)
	AriaSort string // ascending, descending or "" (not sorted by this column)
	// value reads the column's figure of a row; ok is false for an undefined figure.
	value func(m *metrics.SegmentMetrics) (float64, bool)
}

func ptrValue(get func(m *metrics.SegmentMetrics) *float64) func(m *metrics.SegmentMetrics) (float64, bool) {
	return func(m *metrics.SegmentMetrics) (float64, bool) {
		v := get(m)
		if v == nil {
			return 0, false
		}
		return *v, true
	}
}

func intPtrValue(get func(m *metrics.SegmentMetrics) *int64) func(m *metrics.SegmentMetrics) (float64, bool) {
	return func(m *metrics.SegmentMetrics) (float64, bool) {
		v := get(m)
		if v == nil {
			return 0, false
		}
		return float64(*v), true
	}
}

func intValue(get func(m *metrics.SegmentMetrics) int64) func(m *metrics.SegmentMetrics) (float64, bool) {
	return func(m *metrics.SegmentMetrics) (float64, bool) { return float64(get(m)), true }
}

// dashColumns are the table's columns in order; the keys are the API's metric names, so a sort
// link reads like the JSON of GET /metrics/segments.
func dashColumns() []dashColumn {
	return []dashColumn{
		{Key: "segment", Label: "Segment"},
		{Key: "members", Label: "Members", Numeric: true, value: intValue(func(m *metrics.SegmentMetrics) int64 { return m.Members })},
		{Key: "customers", Label: "Customers", Numeric: true, value: intValue(func(m *metrics.SegmentMetrics) int64 { return m.Customers })},
		{Key: "repeat_purchase_rate", Label: "Repeat purchase rate", Numeric: true, value: ptrValue(func(m *metrics.SegmentMetrics) *float64 { return m.RepeatPurchaseRate })},
		{Key: "orders", Label: "Orders", Numeric: true, value: intValue(func(m *metrics.SegmentMetrics) int64 { return m.Orders })},
		{Key: "aov", Label: "AOV", Numeric: true, value: ptrValue(func(m *metrics.SegmentMetrics) *float64 { return m.AOV })},
		{Key: "clv_historic", Label: "CLV historic", Numeric: true, value: ptrValue(func(m *metrics.SegmentMetrics) *float64 { return m.CLVHistoric })},
		{Key: "clv_predicted", Label: "CLV predicted", Numeric: true, value: ptrValue(func(m *metrics.SegmentMetrics) *float64 { return m.CLVPredicted })},
		{Key: "p_alive", Label: "P(alive)", Numeric: true, value: ptrValue(func(m *metrics.SegmentMetrics) *float64 { return m.PAlive })},
		{Key: "churn_rate", Label: "Churn rate", Numeric: true, value: ptrValue(func(m *metrics.SegmentMetrics) *float64 { return m.ChurnRate })},
		{Key: "units_per_transaction", Label: "UPT", Numeric: true, value: ptrValue(func(m *metrics.SegmentMetrics) *float64 { return m.UnitsPerTransaction })},
		{Key: "gross_margin", Label: "Gross margin", Numeric: true, value: intPtrValue(func(m *metrics.SegmentMetrics) *int64 { return m.GrossMargin })},
		{Key: "clv_margin_historic", Label: "CLV margin historic", Numeric: true, value: ptrValue(func(m *metrics.SegmentMetrics) *float64 { return m.CLVMarginHistoric })},
		{Key: "clv_margin_predicted", Label: "CLV margin predicted", Numeric: true, value: ptrValue(func(m *metrics.SegmentMetrics) *float64 { return m.CLVMarginPredicted })},
		{Key: "unknown_cost_share", Label: "Lines of unknown cost", Numeric: true, value: ptrValue(func(m *metrics.SegmentMetrics) *float64 { return m.UnknownCostShare })},
	}
}

// dashFamilies are the segment families the filter offers; "" shows every segment.
var dashFamilies = []struct{ Value, Label string }{
	{"", "Every segment"}, {"all", "All members"}, {"store", "Stores"}, {"tier", "Tiers"},
	{"rfm", "RFM segments"}, {"cohort", "Join cohorts"}, {"segment", "Saved segments"},
}

// dashRow is one segment of the table.
type dashRow struct {
	Label string // what a person reads: "Regulars Oslo Sentrum", "Segment Lapsed regulars"
	metrics.SegmentMetrics
	// Capped: the segment's lifespan is the cap (hardly any churn), which makes its historic
	// CLV large by construction; the page says so beside the figure.
	Capped bool
}

// dashOption is an option of a select.
type dashOption struct {
	Value, Label string
	Selected     bool
}

// dashChart is one rendered chart and its heading.
type dashChart struct {
	Heading string
	SVG     template.HTML
}

// dashboardView is the Data of dashboard.html.
type dashboardView struct {
	Empty     bool // no metrics run yet
	CanRun    bool // an admin: offer the button that runs the metrics
	AsOf      string
	Finished  string
	Window    int
	Churn     int
	Currency  string
	Family    string
	Families  []dashOption
	Sort, Dir string
	Columns   []dashColumn
	Rows      []dashRow
	Bars      []dashChart
	Segment   string // the segment of the line charts
	Segments  []dashOption
	Lines     []dashChart
	// Categories is what the segment of the line charts buys (console_revenue.go).
	Categories *dashCategories
	// LifespanCap is the run's cap of lifespan_years; Capped the shown segments that reach it.
	LifespanCap float64
	Capped      []string
}

// segmentFamily is the family of a snapshot's segment name: the part before the colon.
func segmentFamily(segment string) string {
	family, _, _ := strings.Cut(segment, ":")
	return family
}

// segmentLabel names a snapshot segment for people; names are the saved segments' names by id,
// stores the stores' names by code (a shop knows its stores by name, not by code).
func segmentLabel(segment string, names map[int64]string, stores map[string]string) string {
	family, rest, _ := strings.Cut(segment, ":")
	switch family {
	case "all":
		return "All members"
	case "store":
		if name := stores[rest]; name != "" {
			return name
		}
		return "Store " + rest
	case "tier":
		return "Tier " + rest
	case "rfm":
		return "RFM " + rest
	case "cohort":
		return "Joined " + rest
	case "segment":
		if id, err := strconv.ParseInt(rest, 10, 64); err == nil {
			if name, ok := names[id]; ok {
				return "Segment " + name
			}
		}
		return "Segment #" + rest + " (deleted)"
	}
	return segment
}

// storeNames are the stores' names by code.
func storeNames(ctx context.Context, db *models.DB) (map[string]string, error) {
	list, err := db.FindStores(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(list))
	for _, st := range list {
		out[st.Code] = st.Name
	}
	return out, nil
}

// sortDashRows orders rows by column key, ascending unless desc; undefined figures go last
// whichever the direction, and ties keep the snapshot's order (by segment name).
func sortDashRows(rows []dashRow, cols []dashColumn, key string, desc bool) {
	var col *dashColumn
	for i := range cols {
		if cols[i].Key == key {
			col = &cols[i]
		}
	}
	if col == nil || col.value == nil { // the segment column: by label
		slices.SortStableFunc(rows, func(a, b dashRow) int {
			c := cmp.Compare(strings.ToLower(a.Label), strings.ToLower(b.Label))
			if desc {
				return -c
			}
			return c
		})
		return
	}
	slices.SortStableFunc(rows, func(a, b dashRow) int {
		va, okA := col.value(&a.SegmentMetrics)
		vb, okB := col.value(&b.SegmentMetrics)
		switch {
		case !okA && !okB:
			return 0
		case !okA:
			return 1
		case !okB:
			return -1
		}
		c := cmp.Compare(va, vb)
		if desc {
			return -c
		}
		return c
	})
}

// dashboard shows the newest snapshot: GET /console/?family=&sort=&dir=&segment=.
func (cn *console) dashboard(c echo.Context) error {
	ctx := c.Request().Context()
	db := cn.s.db
	user := currentConsoleUser(c)
	view := dashboardView{CanRun: user != nil && user.Role == models.RoleAdmin}
	page := consolePage{Title: "Dashboard", Nav: "dashboard", Data: &view}
	if c.QueryParam("ran") != "" {
		page.Flash = "Metrics computed."
	}
	if c.QueryParam("busy") != "" {
		page.Flash = "A metrics run is already in progress; reload the page in a minute."
	}
	snap, err := metrics.Latest(ctx, db, nil)
	if models.ErrorCode(err) == models.ENOTFOUND {
		view.Empty = true
		return cn.render(c, http.StatusOK, "dashboard", page)
	}
	if err != nil {
		return err
	}
	view.AsOf = snap.Run.AsOf.Format(time.DateOnly)
	view.Finished = snap.Run.FinishedAt.In(cn.s.tz).Format("2006-01-02 15:04 MST")
	view.Window, view.Churn = snap.Run.WindowDays, snap.Run.ChurnPeriodDays
	view.LifespanCap = snap.Run.LifespanCapYears
	if view.Currency, err = cn.currency(c); err != nil {
		return err
	}
	names, err := segments.Names(ctx, db)
	if err != nil {
		return err
	}
	stores, err := storeNames(ctx, db)
	if err != nil {
		return err
	}

	// The filter, the sort and the chosen segment, each falling back to its default when the
	// query names something unknown (a stale bookmark shows the page rather than an error).
	q := c.QueryParams()
	view.Family = q.Get("family")
	known := false
	for _, f := range dashFamilies {
		if f.Value == view.Family {
			known = true
		}
	}
	if !known {
		view.Family = ""
	}
	for _, f := range dashFamilies {
		view.Families = append(view.Families, dashOption{Value: f.Value, Label: f.Label, Selected: f.Value == view.Family})
	}
	cols := dashColumns()
	view.Sort, view.Dir = "segment", "asc"
	if s := q.Get("sort"); slices.ContainsFunc(cols, func(col dashColumn) bool { return col.Key == s }) {
		view.Sort = s
	}
	if d := q.Get("dir"); d == "asc" || d == "desc" {
		view.Dir = d
	}
	view.Segment = q.Get("segment")
	if !slices.ContainsFunc(snap.Segments, func(m metrics.SegmentMetrics) bool { return m.Segment == view.Segment }) {
		view.Segment = "all"
	}

	for _, m := range snap.Segments {
		for _, v := range []**float64{&m.RepeatPurchaseRate, &m.AOV, &m.PurchaseFrequency, &m.ChurnRate,
			&m.LifespanYears, &m.CLVHistoric, &m.PAlive, &m.ExpectedPurchases, &m.CLVPredicted, &m.ExpectedChurned} {
			finite(v)
		}
		label := segmentLabel(m.Segment, names, stores)
		view.Segments = append(view.Segments, dashOption{Value: m.Segment, Label: label, Selected: m.Segment == view.Segment})
		if view.Family == "" || segmentFamily(m.Segment) == view.Family {
			capped := m.LifespanYears != nil && *m.LifespanYears >= snap.Run.LifespanCapYears-1e-9
			if capped {
				view.Capped = append(view.Capped, label)
			}
			view.Rows = append(view.Rows, dashRow{Label: label, SegmentMetrics: m, Capped: capped})
		}
	}
	sortDashRows(view.Rows, cols, view.Sort, view.Dir == "desc")
	for i := range cols {
		col := &cols[i]
		dir := "asc"
		if col.Numeric {
			dir = "desc" // figures: the biggest first is what one usually wants
		}
		if col.Key == view.Sort {
			col.AriaSort = map[string]string{"asc": "ascending", "desc": "descending"}[view.Dir]
			dir = map[string]string{"asc": "desc", "desc": "asc"}[view.Dir]
		}
		col.Href = dashboardHref(view.Family, col.Key, dir, view.Segment)
	}
	view.Columns = cols
	view.Bars = dashBars(view.Rows, view.Currency)
	view.Lines, err = cn.dashLines(c, snap.Run.AsOf, view.Segment, segmentLabel(view.Segment, names, stores), view.Currency)
	if err != nil {
		return err
	}
	if view.Categories, err = cn.dashCategoryTable(c, view.Segment, segmentLabel(view.Segment, names, stores), snap.Run.AsOf,
		q.Get("categories") != "", dashboardHref(view.Family, view.Sort, view.Dir, view.Segment)+"&categories=1"); err != nil {
		return err
	}
	return cn.render(c, http.StatusOK, "dashboard", page)
}

// dashboardHref is the dashboard's URL with its query.
func dashboardHref(family, sort, dir, segment string) string {
	q := url.Values{}
	if family != "" {
		q.Set("family", family)
	}
	q.Set("sort", sort)
	q.Set("dir", dir)
	if segment != "" && segment != "all" {
		q.Set("segment", segment)
	}
	return "/console/?" + q.Encode()
}

// dashBars draws the per-segment bar charts of the table's rows, in the table's order.
func dashBars(rows []dashRow, currency string) []dashChart {
	money := func(v float64) string { return templates.FormatMoneyFloat(v, currency) }
	percent := templates.FormatPercent
	type bar struct {
		heading, desc string
		get           func(m *metrics.SegmentMetrics) *float64
		format        func(float64) string
	}
	var out []dashChart
	for _, b := range []bar{
		{"CLV historic per segment", "Historic customer lifetime value (AOV × purchase frequency × lifespan) of each segment.",
			func(m *metrics.SegmentMetrics) *float64 { return m.CLVHistoric }, money},
		{"CLV predicted per segment", "Predicted customer lifetime value (BG/NBD and Gamma-Gamma) of each segment.",
			func(m *metrics.SegmentMetrics) *float64 { return m.CLVPredicted }, money},
		{"Churn rate per segment", "Share of the segment's customers of the previous churn period who did not buy in the last one.",
			func(m *metrics.SegmentMetrics) *float64 { return m.ChurnRate }, percent},
		{"Repeat purchase rate per segment", "Share of the segment's customers who bought at least twice in the window.",
			func(m *metrics.SegmentMetrics) *float64 { return m.RepeatPurchaseRate }, percent},
	} {
		chart := svgchart.BarChart{Title: b.heading, Desc: b.desc, Format: b.format}
		for i := range rows {
			chart.Bars = append(chart.Bars, svgchart.Bar{Label: rows[i].Label, Value: b.get(&rows[i].SegmentMetrics)})
		}
		out = append(out, dashChart{Heading: b.heading, SVG: chart.Render()})
	}
	return out
}

// dashLines draws the line charts of segment over the snapshots of the seriesYears before asOf.
func (cn *console) dashLines(c echo.Context, asOf time.Time, segment, label, currency string) ([]dashChart, error) {
	from := asOf.AddDate(-seriesYears, 0, 0)
	series := func(metric, name string) (svgchart.Series, error) {
		points, err := metrics.Series(c.Request().Context(), cn.s.db, segment, metric, from, asOf)
		if err != nil {
			return svgchart.Series{}, err
		}
		s := svgchart.Series{Name: name}
		for _, p := range points {
			s.Points = append(s.Points, svgchart.LinePoint{At: p.AsOf, Value: p.Value})
		}
		return s, nil
	}
	money := func(v float64) string { return templates.FormatMoneyFloat(v, currency) }
	percent := templates.FormatPercent
	percentTick := func(v float64) string { return strconv.FormatFloat(v*100, 'f', 0, 64) + " %" }
	// Ticks are round: money without the minor units ("1 234 NOK").
	moneyTick := func(v float64) string {
		s := templates.FormatMoneyFloat(v, currency)
		if i := strings.LastIndex(s, "."); i > 0 {
			whole, rest := s[:i], s[i:]
			if j := strings.IndexByte(rest, ' '); j > 0 {
				return whole + rest[j:]
			}
			return whole
		}
		return s
	}
	type line struct {
		heading string
		metrics [][2]string // metric, series name
		format  func(float64) string
		tick    func(float64) string
	}
	var out []dashChart
	for _, l := range []line{
		{"CLV over time", [][2]string{{"clv_historic", "CLV historic"}, {"clv_predicted", "CLV predicted"}}, money, moneyTick},
		{"Churn over time", [][2]string{{"churn_rate", "Churn rate"}, {"expected_churned", "Expected churned"}}, percent, percentTick},
		{"Repeat purchase rate over time", [][2]string{{"repeat_purchase_rate", "Repeat purchase rate"}}, percent, percentTick},
	} {
		chart := svgchart.LineChart{Title: l.heading + ": " + label, Format: l.format, TickFormat: l.tick,
			Desc: fmt.Sprintf("%s of %s from each metrics snapshot between %s and %s.", l.heading, label,
				from.Format(time.DateOnly), asOf.Format(time.DateOnly))}
		for _, m := range l.metrics {
			s, err := series(m[0], m[1])
			if err != nil {
				return nil, err
			}
			chart.Series = append(chart.Series, s)
		}
		out = append(out, dashChart{Heading: l.heading, SVG: chart.Render()})
	}
	return out, nil
}

// currency is the shops' currency when they all share one (metrics add up amounts across
// stores, so that is the currency of every figure); "" otherwise.
func (cn *console) currency(c echo.Context) (string, error) {
	stores, err := cn.s.db.FindStores(c.Request().Context())
	if err != nil {
		return "", err
	}
	currency := ""
	for i, s := range stores {
		if i > 0 && s.Currency != currency {
			return "", nil
		}
		currency = s.Currency
	}
	return currency, nil
}

// runMetricsNow computes a snapshot as of today, as POST /api/v1/metrics/run does, and goes back
// to the dashboard. A run already in progress (ECONFLICT) is said so rather than failed.
func (cn *console) runMetricsNow(c echo.Context) error {
	opts := cn.s.metricsOpts
	opts.AsOf = cn.s.db.Now().In(cn.s.tz)
	cn.s.allowLongRun(c)
	_, err := metrics.Compute(c.Request().Context(), cn.s.db, opts)
	if models.ErrorCode(err) == models.ECONFLICT {
		return c.Redirect(http.StatusSeeOther, "/console/?busy=1")
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/console/?ran=1")
}
