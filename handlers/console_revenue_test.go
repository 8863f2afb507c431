package handlers

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/templates"
)

// TestConsoleRevenuePage puts a few sales around this month and the same month last year into
// two stores and reads the Revenue page on 6 December 2026 (a fixed clock). By hand: December
// 2026 so far is a member's 10000 less their 2000 refund = 8000, all members'; 1–6 December 2025
// holds an anonymous 30000, and the whole of December 2025 another 5000 on the 20th; so net
// sales are 8000 / 30000 − 1 = −73.3 % against the same days last year. November 2026 has a
// member's 20000 at bergen-1.
func TestConsoleRevenuePage(t *testing.T) {
	cc := newConsole(t)
	ctx := context.Background()
	loc := dashOslo(t)
	cc.Server.reconfigure(t, func(c *Config) { c.Timezone = loc })
	cc.DB.Now = func() time.Time { return time.Date(2026, 12, 6, 12, 0, 0, 0, loc) }
	if _, err := cc.DB.Pool.Exec(ctx, `
		INSERT INTO stores (code, name, timezone, currency) VALUES
		    ('oslo-1', 'Oslo', 'Europe/Oslo', 'NOK'), ('bergen-1', 'Bergen', 'Europe/Oslo', 'NOK');
		INSERT INTO members (card, name, status, source) VALUES ('0000000000001', 'A', 'active', 'test');
		INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, content_hash)
		SELECT s.id, v.txn, v.kind, v.at::timestamp AT TIME ZONE 'Europe/Oslo', v.amount, 'NOK',
		       CASE WHEN v.member THEN (SELECT id FROM members) END, '\x00'
		FROM (VALUES ('oslo-1', 'T1', 'sale', '2026-12-01 12:00', 10000, true),
		             ('oslo-1', 'T2', 'refund', '2026-12-02 12:00', 2000, true),
		             ('oslo-1', 'T3', 'sale', '2025-12-03 12:00', 30000, false),
		             ('oslo-1', 'T4', 'sale', '2025-12-20 12:00', 5000, false),
		             ('bergen-1', 'T5', 'sale', '2026-11-15 12:00', 20000, true)) AS v(store, txn, kind, at, amount, member)
		JOIN stores s ON s.code = v.store`); err != nil {
		t.Fatal(err)
	}
	client, _ := cc.loginAs(t, "marketer")
	money := func(minor int64) string { return templates.FormatMoney(minor, "NOK") }

	t.Run("every store: the month-to-date comparison, the charts and the month table", func(t *testing.T) {
		res := cc.get(t, client, "/console/revenue")
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %.300s", res.Status, res.Body)
		}
		body := res.Body
		for _, want := range []string{
			`aria-current="page">Revenue</a>`,
			`value="2025-12-01"`, `value="2027-01-01"`, // the default range: this month and the twelve before
			"1 December–6 December 2026", "1 December–6 December 2025", "All of December 2025",
			`<strong id="revenue-change">` + "\u221273.3 %</strong>",
			money(8000), money(30000), money(35000),
			`aria-label="Member share of revenue`, `aria-label="Average order value: members and anonymous`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("the page lacks %q", want)
			}
		}
		nov := rowOf(t, body, `<tr data-month="2026-11">`)
		if !strings.Contains(nov, money(20000)) || !strings.Contains(nov, "100.0 %") {
			t.Errorf("November 2026: %s, want 200 NOK all of members", nov)
		}
		if got := strings.Count(body, `<tr data-month=`); got != 13 {
			t.Errorf("%d month rows, want 13", got)
		}
	})
	t.Run("one store and a range of one's own", func(t *testing.T) {
		res := cc.get(t, client, "/console/revenue?store=oslo-1&from=2025-12-01&to=2026-01-01")
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %.300s", res.Status, res.Body)
		}
		dec := rowOf(t, res.Body, `<tr data-month="2025-12">`)
		if !strings.Contains(dec, money(35000)) || !strings.Contains(dec, "0.0 %") || strings.Count(res.Body, `<tr data-month=`) != 1 {
			t.Errorf("December 2025 at oslo-1: %s, want 350 NOK, none of it members'", dec)
		}
	})
	t.Run("a bad date is the console's error page", func(t *testing.T) {
		if res := cc.get(t, client, "/console/revenue?from=soon"); res.Status != http.StatusUnprocessableEntity {
			t.Errorf("status %d, want 422", res.Status)
		}
	})
}

// rowOf is the table row that starts with start.
func rowOf(t *testing.T, body, start string) string {
	t.Helper()
	i := strings.Index(body, start)
	if i < 0 {
		t.Fatalf("no row %s", start)
	}
	return body[i : i+strings.Index(body[i:], "</tr>")]
}

// TestDashboardCategoryTable puts the demo shop's skus in a catalogue, all but one, and checks
// the dashboard's category table, once asked for (?categories=1), against segments.Categories
// as of the snapshot's date; a segment of the rewards family gets a sentence instead.
func TestDashboardCategoryTable(t *testing.T) {
	cc, snap := newDashboardConsole(t)
	ctx := context.Background()
	// The demo's skus in two categories, but for the first one, which stays uncategorised.
	if _, err := cc.DB.Pool.Exec(ctx, `
		INSERT INTO products (sku, name, category, brand, price_minor)
		SELECT sku, sku, CASE WHEN n % 2 = 0 THEN 'Coffee' ELSE 'Tea' END, '', 100
		FROM (SELECT sku, row_number() OVER (ORDER BY sku) AS n FROM (SELECT DISTINCT sku FROM transaction_items) d) s
		WHERE n > 1`); err != nil {
		t.Fatal(err)
	}
	client, _ := cc.loginAs(t, "marketer")
	asOf := snap.Run.AsOf
	rep, err := segments.Categories(ctx, cc.DB, "all", time.Date(asOf.Year(), asOf.Month(), asOf.Day(), 0, 0, 0, 0, dashOslo(t)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Categories) < 2 {
		t.Fatalf("categories %+v, want a category and uncategorised", rep.Categories)
	}
	// The table is offered, and shown when asked for.
	if body := cc.get(t, client, "/console/").Body; !strings.Contains(body, `id="dash-categories-show"`) || strings.Contains(body, `id="dash-categories"`) {
		t.Errorf("the dashboard does not offer the category table")
	}
	body := cc.get(t, client, "/console/?sort=segment&dir=asc&categories=1").Body
	if !strings.Contains(body, "Categories bought: All members") || !strings.Contains(body, `id="dash-categories"`) {
		t.Fatalf("no category table on the dashboard")
	}
	for _, c := range rep.Categories {
		name := "Uncategorised"
		if c.Category != nil {
			name = *c.Category
		}
		row := rowOf(t, body, `<th scope="row">`+name+`</th>`)
		for _, want := range []string{templates.FormatMoney(c.Revenue, "NOK"), strconv.FormatInt(c.Units, 10)} {
			if !strings.Contains(strings.ReplaceAll(row, ",", ""), strings.ReplaceAll(want, ",", "")) {
				t.Errorf("%s row %s lacks %s", name, row, want)
			}
		}
	}
	if body := cc.get(t, client, "/console/?segment=rewards:redeemers&categories=1").Body; !strings.Contains(body, "There is no category report for") {
		t.Errorf("the rewards segment shows no explanation")
	}
}
