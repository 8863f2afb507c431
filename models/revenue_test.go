package models_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

// revenueFixture is two stores in two zones with sales and refunds of two members and of
// nobody, around the edges of the months. The figures the tests expect are worked out by hand
// beside each case.
func revenueFixture(t *testing.T) *models.DB {
	t.Helper()
	db := dbtest.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO stores (code, name, timezone, currency) VALUES
		    ('oslo-1', 'Oslo', 'Europe/Oslo', 'NOK'), ('ny-1', 'New York', 'America/New_York', 'USD');
		INSERT INTO members (card, name, status, source) VALUES
		    ('0000000000001', 'A', 'active', 'test'), ('0000000000002', 'B', 'active', 'test')`); err != nil {
		t.Fatal(err)
	}
	for i, tx := range []struct {
		store, kind, at string // at: local wall clock of the store
		amount          int64
		member          string // card, "" for an anonymous sale
	}{
		{"oslo-1", "sale", "2025-12-31 23:50", 9999, "0000000000001"}, // December in Oslo: outside
		{"oslo-1", "sale", "2026-01-10 12:00", 10000, "0000000000001"},
		{"oslo-1", "sale", "2026-01-15 12:00", 5000, ""},
		{"oslo-1", "refund", "2026-01-20 12:00", 2000, "0000000000001"},
		{"oslo-1", "refund", "2026-01-21 12:00", 1000, ""},
		{"oslo-1", "sale", "2026-02-01 00:30", 3000, "0000000000002"}, // still January in UTC
		{"oslo-1", "sale", "2026-02-14 12:00", 7000, ""},
		{"oslo-1", "sale", "2026-02-15 12:00", 1000, ""},
		{"oslo-1", "sale", "2026-04-01 00:10", 8888, "0000000000002"}, // April in Oslo: outside
		{"ny-1", "sale", "2026-01-31 22:00", 2000, ""},                // February in UTC
		{"ny-1", "sale", "2026-03-03 09:00", 4000, "0000000000001"},
	} {
		if _, err := db.Pool.Exec(ctx, `
			INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, content_hash)
			SELECT s.id, $2, $3, $4::timestamp AT TIME ZONE s.timezone, $5, s.currency,
			       (SELECT id FROM members WHERE card = $6), '\x00'
			FROM stores s WHERE s.code = $1`,
			tx.store, fmt.Sprint("T", i), tx.kind, tx.at, tx.amount, tx.member); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// revenueLine writes a row compactly: month store currency total members share orders aovs.
func revenueLine(r models.RevenueRow) string {
	f := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.4f", *v)
	}
	return fmt.Sprintf("%s %s %s total=%d members=%d share=%s orders=%d/%d aov=%s/%s", r.Month, r.Store, r.Currency,
		r.RevenueTotal, r.RevenueMembers, f(r.MemberShare), r.OrdersMembers, r.OrdersAnonymous, f(r.AOVMembers), f(r.AOVAnonymous))
}

func TestRevenue(t *testing.T) {
	t.Parallel()
	db := revenueFixture(t)
	ctx := context.Background()
	date := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		name, from, to, store string
		want                  []string
	}{
		{"every store and month of the first quarter, empty months included", "2026-01-01", "2026-04-01", "", []string{
			// Oslo January: 10000 + 5000 − 2000 − 1000 = 12000, members 10000 − 2000 = 8000,
			// anonymous 5000 − 1000 = 4000 over 1 sale.
			"2026-01 ny-1 USD total=2000 members=0 share=0.0000 orders=0/1 aov=-/2000.0000",
			"2026-01 oslo-1 NOK total=12000 members=8000 share=0.6667 orders=1/1 aov=8000.0000/4000.0000",
			// Oslo February: B's 3000 at 00:30 on the 1st, 7000 + 1000 anonymous.
			"2026-02 ny-1 USD total=0 members=0 share=- orders=0/0 aov=-/-",
			"2026-02 oslo-1 NOK total=11000 members=3000 share=0.2727 orders=1/2 aov=3000.0000/4000.0000",
			"2026-03 ny-1 USD total=4000 members=4000 share=1.0000 orders=1/0 aov=4000.0000/-",
			"2026-03 oslo-1 NOK total=0 members=0 share=- orders=0/0 aov=-/-",
		}},
		{"one store", "2026-01-01", "2026-04-01", "ny-1", []string{
			"2026-01 ny-1 USD total=2000 members=0 share=0.0000 orders=0/1 aov=-/2000.0000",
			"2026-02 ny-1 USD total=0 members=0 share=- orders=0/0 aov=-/-",
			"2026-03 ny-1 USD total=4000 members=4000 share=1.0000 orders=1/0 aov=4000.0000/-",
		}},
		{"a range cut inside months counts only its own days", "2026-01-16", "2026-02-15", "oslo-1", []string{
			// January 16–31: the two refunds only; February 1–14: 3000 of B and 7000 anonymous.
			"2026-01 oslo-1 NOK total=-3000 members=-2000 share=0.6667 orders=0/0 aov=-/-",
			"2026-02 oslo-1 NOK total=10000 members=3000 share=0.3000 orders=1/1 aov=3000.0000/7000.0000",
		}},
		{"a range inside one month", "2026-02-02", "2026-02-15", "oslo-1", []string{
			// February 2–14: the 7000 of the 14th; not B's 3000 of the 1st, not the 1000 of the 15th.
			"2026-02 oslo-1 NOK total=7000 members=0 share=0.0000 orders=0/1 aov=-/7000.0000",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := db.Revenue(ctx, date(tc.from), date(tc.to), tc.store)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]string, len(rows))
			for i, r := range rows {
				got[i] = revenueLine(r)
			}
			if g, w := strings.Join(got, "\n"), strings.Join(tc.want, "\n"); g != w {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
		})
	}

	for _, tc := range []struct {
		name, from, to, store, field string
	}{
		{"an empty range is refused", "2026-02-01", "2026-02-01", "", "from"},
		{"a range of more than three years is refused", "2020-01-01", "2023-01-02", "", "to"},
		{"an unknown store is refused", "2026-01-01", "2026-02-01", "bergen-9", "store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.Revenue(ctx, date(tc.from), date(tc.to), tc.store)
			var e *models.Error
			if !errors.As(err, &e) || e.Code != models.EINVALID || e.Fields[tc.field] == "" {
				t.Errorf("got %v, want EINVALID naming %s", err, tc.field)
			}
		})
	}
}

func TestRevenueRangeIsThisMonthAndTheTwelveBefore(t *testing.T) {
	from, to := models.RevenueRange(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	if f, g := from.Format(time.DateOnly), to.Format(time.DateOnly); f != "2025-12-01" || g != "2027-01-01" {
		t.Errorf("got [%s, %s), want [2025-12-01, 2027-01-01)", f, g)
	}
}
