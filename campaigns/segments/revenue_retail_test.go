package segments

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/regulars/regulars/models/dbtest"
)

// TestRevenueAndCategoriesOnRealReceipts loads the first 100,000 lines of the UCI Online Retail
// data (three months, loadRetail) and compares GET /metrics/revenue's figures (models.Revenue)
// and the categories of every member (Categories) with the same figures computed here in Go,
// straight from the CSV lines.
func TestRevenueAndCategoriesOnRealReceipts(t *testing.T) {
	t.Parallel()
	rows := readRetail(t, 100_000)
	db := dbtest.New(t)
	ctx := context.Background()
	london, _ := time.LoadLocation("Europe/London")
	category, invoices, order := loadRetail(t, db, rows)

	t.Run("revenue per month", func(t *testing.T) {
		type month struct{ total, members, ordersMembers, ordersAnonymous int64 }
		want := map[string]*month{}
		for _, no := range order {
			inv := invoices[no]
			key := inv.at.In(london).Format("2006-01")
			m := want[key]
			if m == nil {
				m = &month{}
				want[key] = m
			}
			net := inv.stored()
			if refund(no) {
				net = -net
			}
			m.total += net
			if inv.customer != "" {
				m.members += net
			}
			switch {
			case refund(no):
			case inv.customer != "":
				m.ordersMembers++
			default:
				m.ordersAnonymous++
			}
		}
		got, err := db.Revenue(ctx, time.Date(2010, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2011, 3, 1, 0, 0, 0, 0, time.UTC), "uk-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || len(want) != 3 {
			t.Fatalf("%d months from SQL, %d from the CSV, want 3", len(got), len(want))
		}
		near := func(a *float64, b float64) bool { return a != nil && math.Abs(*a-b) < 1e-9*math.Max(1, math.Abs(b)) }
		for _, r := range got {
			w := want[r.Month]
			if w == nil || r.RevenueTotal != w.total || r.RevenueMembers != w.members ||
				r.OrdersMembers != w.ordersMembers || r.OrdersAnonymous != w.ordersAnonymous ||
				!near(r.MemberShare, float64(w.members)/float64(w.total)) ||
				!near(r.AOVMembers, float64(w.members)/float64(w.ordersMembers)) ||
				!near(r.AOVAnonymous, float64(w.total-w.members)/float64(w.ordersAnonymous)) {
				t.Errorf("%s: SQL %+v, CSV %+v", r.Month, r, w)
			}
			t.Logf("%s: total %d, members %d (%.1f %%), orders %d members / %d anonymous", r.Month,
				r.RevenueTotal, r.RevenueMembers, 100**r.MemberShare, r.OrdersMembers, r.OrdersAnonymous)
		}
	})

	t.Run("categories of every member", func(t *testing.T) {
		asOf := time.Date(2011, 3, 1, 0, 0, 0, 0, london) // the whole sample is in the 365 days before
		type cat struct {
			buyers, orders map[string]bool
			perBuyer       map[string]map[string]bool
			units, revenue int64
		}
		want := map[string]*cat{}
		for _, no := range order {
			inv := invoices[no]
			if inv.customer == "" || refund(no) { // members' sales; no refund names its sale here
				continue
			}
			for _, l := range inv.lines {
				key := category[l.sku] // "" is the uncategorised row
				c := want[key]
				if c == nil {
					c = &cat{buyers: map[string]bool{}, orders: map[string]bool{}, perBuyer: map[string]map[string]bool{}}
					want[key] = c
				}
				c.buyers[inv.customer] = true
				c.orders[no] = true
				if c.perBuyer[inv.customer] == nil {
					c.perBuyer[inv.customer] = map[string]bool{}
				}
				c.perBuyer[inv.customer][no] = true
				c.units += int64(l.qty)
				c.revenue += int64(l.qty) * max(l.priceMinor, 0)
			}
		}
		rep, err := Categories(ctx, db, "all", asOf)
		if err != nil {
			t.Fatal(err)
		}
		if n := min(len(want), MaxCategoryRows); len(rep.Categories) != n || rep.Truncated != (len(want) > MaxCategoryRows) {
			t.Fatalf("%d categories (truncated %v), want %d of %d", len(rep.Categories), rep.Truncated, n, len(want))
		}
		for i, r := range rep.Categories {
			key := ""
			if r.Category != nil {
				key = *r.Category
			}
			w := want[key]
			if w == nil {
				t.Errorf("row %d: category %q is not in the CSV", i, key)
				continue
			}
			repeat := 0
			for _, orders := range w.perBuyer {
				if len(orders) >= 2 {
					repeat++
				}
			}
			got := fmt.Sprintf("%d/%d/%d %d", r.Buyers, r.Orders, r.Units, r.Revenue)
			exp := fmt.Sprintf("%d/%d/%d %d", len(w.buyers), len(w.orders), w.units, w.revenue)
			if got != exp || r.RepeatRate == nil || math.Abs(*r.RepeatRate-float64(repeat)/float64(len(w.buyers))) > 1e-12 {
				t.Errorf("%q: SQL %s repeat %v, CSV %s repeat %d/%d", key, got, *r.RepeatRate, exp, repeat, len(w.buyers))
			}
			if i > 0 && r.Category != nil && rep.Categories[i-1].Revenue < r.Revenue {
				t.Errorf("%q comes after a category with less revenue", key)
			}
		}
		if last := rep.Categories[len(rep.Categories)-1]; last.Category != nil {
			t.Errorf("the last row is %q, want the uncategorised lines", *last.Category)
		}
		top := rep.Categories[0]
		t.Logf("%d categories; the first %s: %d buyers, revenue %d, repeat rate %.3f", len(want), *top.Category,
			top.Buyers, top.Revenue, *top.RepeatRate)
	})
}
