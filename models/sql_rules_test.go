package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// TestSQLRulesAreInlined guards the SQL functions that hold shared business rules (migrations
// 00016 and 00017): each must stay inlinable, or every query that calls it loses its index
// conditions and pays a call per row. An inlined function leaves no trace of its name in the plan.
func TestSQLRulesAreInlined(t *testing.T) {
	db := bareDB(t)
	ctx := context.Background()
	cases := []struct {
		name, function, query string
	}{
		{"net_amount becomes its CASE", "net_amount",
			`SELECT member_id, sum(net_amount(kind, amount_minor)) FROM transactions GROUP BY member_id`},
		{"in_trailing_year becomes two index conditions", "in_trailing_year",
			`SELECT count(*) FROM transactions t WHERE t.member_id = 1 AND in_trailing_year(t.occurred_at, now(), 'Europe/Oslo')`},
		{"tier_for_spend becomes a join against the tiers", "tier_for_spend",
			`SELECT m.id, tt.name FROM members m CROSS JOIN LATERAL tier_for_spend(m.id::numeric) tt`},
		{"member_tier becomes an index scan and a join", "member_tier",
			`SELECT name, discount_percent FROM member_tier(1, now(), 'UTC')`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := db.Pool.Query(ctx, "EXPLAIN (VERBOSE) "+tc.query)
			if err != nil {
				t.Fatal(err)
			}
			var plan strings.Builder
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan.WriteString(line + "\n")
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(plan.String(), tc.function) || strings.Contains(plan.String(), "Function Scan") {
				t.Errorf("%s is not inlined:\n%s", tc.function, plan.String())
			}
		})
	}
}

// TestTheTrailingYearIsTierWindowDaysLong checks models.TierWindowDays against in_trailing_year,
// the window's one home: [as-of − 365 calendar days, as-of) in the given zone.
func TestTheTrailingYearIsTierWindowDaysLong(t *testing.T) {
	db := bareDB(t)
	ctx := context.Background()
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	asOf := time.Date(2026, 4, 1, 0, 0, 0, 0, oslo) // summer time; a year earlier is summer time too
	start := asOf.AddDate(0, 0, -models.TierWindowDays)
	cases := []struct {
		name string
		at   time.Time
		want bool
	}{
		{"the window's first instant counts", start, true},
		{"a microsecond before it does not", start.Add(-time.Microsecond), false},
		{"the last instant before as-of counts", asOf.Add(-time.Microsecond), true},
		{"as-of itself does not", asOf, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got bool
			if err := db.Pool.QueryRow(ctx, `SELECT in_trailing_year($1, $2, 'Europe/Oslo')`, tc.at, asOf).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("in_trailing_year(%s, %s) = %v, want %v", tc.at, asOf, got, tc.want)
			}
		})
	}
}
