package handlers

// The console's Revenue page (issue 16.3): how much of the takings comes from club members,
// members' against anonymous average order values, and this month's sales so far against the
// same days of the same month last year (the seeds' "monthly sales progress"). Charts are drawn
// on the server (templates/svgchart) from models.Revenue, as on the dashboard. The dashboard's
// table of categories per segment (segments.Categories) is here too.

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/templates"
	"github.com/regulars/regulars/templates/svgchart"
)

// revenueMonth is one month of the page: one store's row, or every store's rows added up when
// they share a currency.
type revenueMonth struct {
	Month time.Time
	models.RevenueRow
}

// revenueProgress is the month-to-date comparison: this month so far, the same days a year
// earlier, and the whole of that month.
type revenueProgress struct {
	ThisLabel, LastLabel, LastWholeLabel string
	This, Last, LastWhole                models.RevenueRow
	Change                               *float64 // revenue_total this ÷ last − 1; nil when last is not positive
}

// revenueView is the Data of revenue.html.
type revenueView struct {
	Store    string // "" for every store
	Stores   []dashOption
	From, To string // the range, To exclusive
	Currency string
	Months   []revenueMonth
	Charts   []dashChart
	Progress *revenueProgress
}

// revenue shows GET /console/revenue?store=&from=&to=.
func (cn *console) revenue(c echo.Context) error {
	ctx := c.Request().Context()
	view := revenueView{}
	page := consolePage{Title: "Revenue", Nav: "revenue", Data: &view}
	stores, err := cn.s.db.FindStores(ctx)
	if err != nil {
		return err
	}
	// Every store together only when they share a currency: amounts of two currencies do not add.
	sameCurrency := true
	for _, s := range stores {
		sameCurrency = sameCurrency && s.Currency == stores[0].Currency
	}
	view.Store = c.QueryParam("store")
	if !sameCurrency && view.Store == "" && len(stores) > 0 {
		view.Store = stores[0].Code
	}
	if sameCurrency {
		view.Stores = append(view.Stores, dashOption{Value: "", Label: "Every store", Selected: view.Store == ""})
	}
	for _, s := range stores {
		view.Stores = append(view.Stores, dashOption{Value: s.Code, Label: s.Name + " (" + s.Code + ")", Selected: s.Code == view.Store})
		if s.Code == view.Store || (view.Store == "" && sameCurrency) {
			view.Currency = s.Currency
		}
	}
	from, to, err := cn.s.revenueRange(c.QueryParam("from"), c.QueryParam("to"))
	if err != nil {
		return err
	}
	view.From, view.To = from.Format(time.DateOnly), to.Format(time.DateOnly)
	rows, err := cn.s.db.Revenue(ctx, from, to, view.Store)
	if err != nil {
		return err
	}
	view.Months = sumRevenueMonths(rows)
	view.Charts = revenueCharts(view.Months, view.Currency, view.From, view.To)

	today := cn.s.db.Now().In(cn.s.tz)
	if view.Progress, err = cn.revenueProgress(c, today, view.Store); err != nil {
		return err
	}
	return cn.render(c, http.StatusOK, "revenue", page)
}

// sumRevenueMonths adds the stores' rows of each month up (rows come by month, then store) and
// works out the ratios of the sums again.
func sumRevenueMonths(rows []models.RevenueRow) []revenueMonth {
	var out []revenueMonth
	for _, r := range rows {
		if n := len(out); n > 0 && out[n-1].RevenueRow.Month == r.Month {
			m := &out[n-1].RevenueRow
			m.RevenueTotal += r.RevenueTotal
			m.RevenueMembers += r.RevenueMembers
			m.OrdersMembers += r.OrdersMembers
			m.OrdersAnonymous += r.OrdersAnonymous
			m.Store = ""
			continue
		}
		at, _ := time.Parse("2006-01", r.Month)
		out = append(out, revenueMonth{Month: at, RevenueRow: r})
	}
	for i := range out {
		revenueRatios(&out[i].RevenueRow)
	}
	return out
}

// revenueRatios sets a row's ratios from its sums, as models.Revenue defines them.
func revenueRatios(r *models.RevenueRow) {
	ratio := func(a, b int64) *float64 {
		if b == 0 {
			return nil
		}
		v := float64(a) / float64(b)
		return &v
	}
	r.MemberShare = ratio(r.RevenueMembers, r.RevenueTotal)
	r.AOVMembers = ratio(r.RevenueMembers, r.OrdersMembers)
	r.AOVAnonymous = ratio(r.RevenueTotal-r.RevenueMembers, r.OrdersAnonymous)
}

// revenueCharts draws the member share and the two AOVs month by month.
func revenueCharts(months []revenueMonth, currency, from, to string) []dashChart {
	share := svgchart.Series{Name: "Member share"}
	members, anonymous := svgchart.Series{Name: "Members"}, svgchart.Series{Name: "Anonymous"}
	for _, m := range months {
		share.Points = append(share.Points, svgchart.LinePoint{At: m.Month, Value: m.MemberShare})
		members.Points = append(members.Points, svgchart.LinePoint{At: m.Month, Value: m.AOVMembers})
		anonymous.Points = append(anonymous.Points, svgchart.LinePoint{At: m.Month, Value: m.AOVAnonymous})
	}
	money := func(v float64) string { return templates.FormatMoneyFloat(v, currency) }
	span := " per month from " + from + " to " + to + " (exclusive)."
	shareChart := svgchart.LineChart{Title: "Member share of revenue", Format: templates.FormatPercent,
		Desc:   "Club members' net sales as a share of all net sales" + span,
		Series: []svgchart.Series{share}}
	aovChart := svgchart.LineChart{Title: "Average order value: members and anonymous", Format: money,
		Desc:   "Net sales per order of club members and of customers without a card" + span,
		Series: []svgchart.Series{members, anonymous}}
	return []dashChart{{Heading: "Member share of revenue", SVG: shareChart.Render()},
		{Heading: "Average order value", SVG: aovChart.Render()}}
}

// revenueProgress compares this month up to today with the same days of that month a year
// earlier, and with the whole of it. A 29 February "today" compares with 1–28 February.
func (cn *console) revenueProgress(c echo.Context, today time.Time, store string) (*revenueProgress, error) {
	y, m, d := today.Date()
	thisFrom := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	thisTo := thisFrom.AddDate(0, 0, d)
	lastFrom := thisFrom.AddDate(-1, 0, 0)
	lastWholeTo := lastFrom.AddDate(0, 1, 0)
	lastTo := lastFrom.AddDate(0, 0, d)
	if lastTo.After(lastWholeTo) {
		lastTo = lastWholeTo
	}
	p := &revenueProgress{
		ThisLabel:      thisFrom.Format("2 January") + "–" + thisTo.AddDate(0, 0, -1).Format("2 January 2006"),
		LastLabel:      lastFrom.Format("2 January") + "–" + lastTo.AddDate(0, 0, -1).Format("2 January 2006"),
		LastWholeLabel: lastFrom.Format("January 2006"),
	}
	for _, part := range []struct {
		row      *models.RevenueRow
		from, to time.Time
	}{{&p.This, thisFrom, thisTo}, {&p.Last, lastFrom, lastTo}, {&p.LastWhole, lastFrom, lastWholeTo}} {
		rows, err := cn.s.db.Revenue(c.Request().Context(), part.from, part.to, store)
		if err != nil {
			return nil, err
		}
		if months := sumRevenueMonths(rows); len(months) > 0 {
			*part.row = months[0].RevenueRow
		}
	}
	if p.Last.RevenueTotal > 0 {
		v := float64(p.This.RevenueTotal)/float64(p.Last.RevenueTotal) - 1
		p.Change = &v
	}
	return p, nil
}

// dashCategories is the dashboard's table of what the chosen segment buys.
type dashCategories struct {
	Label    string
	AsOf     string
	From     string
	Rows     []segments.CategoryRow
	Missing  string // why there is no table (a family without a categories report)
	Truncate bool
	// Offer is the link that shows the table, until it is asked for: the report reads a year of
	// receipt lines (7-18 s for every member of a 100,000-member shop on the busy test machine,
	// docs/benchmarks.md), too slow for every view of the dashboard.
	Offer string
}

// dashCategoryTable reports the categories of segment as of the snapshot's date (the instant it
// begins in the shop's zone), like the rest of the dashboard, when show is set; otherwise it
// offers the link href that shows it. A segment the report cannot evaluate (the rewards family)
// gets a sentence instead of a table.
func (cn *console) dashCategoryTable(c echo.Context, segment, label string, asOf time.Time, show bool, href string) (*dashCategories, error) {
	out := &dashCategories{Label: label, AsOf: asOf.Format(time.DateOnly)}
	if !show {
		out.Offer = href
		return out, nil
	}
	at := time.Date(asOf.Year(), asOf.Month(), asOf.Day(), 0, 0, 0, 0, cn.s.tz)
	rep, err := segments.Categories(c.Request().Context(), cn.s.db, segment, at)
	if models.ErrorCode(err) == models.EINVALID {
		out.Missing = "There is no category report for " + strings.ToLower(label[:1]) + label[1:] + "."
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	out.From = rep.From.Format(time.DateOnly)
	out.Rows, out.Truncate = rep.Categories, rep.Truncated
	return out, nil
}
