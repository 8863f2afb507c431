package segments

import (
	"context"
	"strings"
	"testing"
)

// seedMemberMetrics stores a finished metrics run and its per-member figures for the fixture,
// as jobs/metrics would:
//
//	name  p_alive  expected_purchases  clv_predicted  (stored days/orders, deliberately stale)
//	ada   0.9      3.2                 120000         500 / 0
//	ben   0.3      0.4                 8000           500 / 0
//	cai   0.05     0.01                300            500 / 0
//	eva   0.5      1.5                 50000          500 / 0
//	fil   NULL     NULL                NULL           (a row, but no usable fit)
//	dag   no row at all
func seedMemberMetrics(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	var runID int64
	if err := f.db.Pool.QueryRow(ctx, `
		INSERT INTO metric_runs (as_of, timezone, window_days, churn_days, lifespan_cap_years, finished_at, status)
		VALUES ('2026-06-01', 'Europe/Oslo', 365, 90, 10, now(), 'done') RETURNING id`).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		name                  string
		pAlive, expected, clv *float64
	}{
		{"ada", num(0.9), num(3.2), num(120000)},
		{"ben", num(0.3), num(0.4), num(8000)},
		{"cai", num(0.05), num(0.01), num(300)},
		{"eva", num(0.5), num(1.5), num(50000)},
		{"fil", nil, nil, nil},
	} {
		if _, err := f.db.Pool.Exec(ctx, `
			INSERT INTO member_metrics (member_id, run_id, as_of, days_since_last_purchase, orders_365d, spend_365d,
			                            p_alive, expected_purchases, clv_predicted)
			VALUES ($1, $2, '2026-06-01', 500, 0, 0, $3, $4, $5)`,
			f.ids[r.name], runID, r.pAlive, r.expected, r.clv); err != nil {
			t.Fatalf("member_metrics of %s: %v", r.name, err)
		}
	}
}

func num(v float64) *float64 { return &v }

func TestModelFiguresSelectTheExpectedMembers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedMemberMetrics(t, f)
	tests := []struct {
		name, tree, want string
	}{
		{"p_alive under one half, the boundary left out", `{"field": "p_alive", "op": "lt", "value": 0.5}`, "ben cai"},
		{"p_alive of at least one half", `{"field": "p_alive", "op": "gte", "value": 0.5}`, "ada eva"},
		{"the contract's example: a store's members with p_alive under one half",
			`{"all": [{"field": "home_store", "op": "eq", "value": "oslo-1"}, {"field": "p_alive", "op": "lt", "value": 0.5}]}`, "ben"},
		{"p_alive is null without a row or without a usable fit", `{"field": "p_alive", "op": "is_null"}`, "dag fil"},
		{"p_alive is not null", `{"field": "p_alive", "op": "is_not_null"}`, "ada ben cai eva"},
		{"not of p_alive includes members without figures", `{"not": {"field": "p_alive", "op": "lt", "value": 0.5}}`, "ada dag eva fil"},
		{"clv_predicted of at least 50000 minor units", `{"field": "clv_predicted", "op": "gte", "value": 50000}`, "ada eva"},
		{"clv_predicted between, both included", `{"field": "clv_predicted", "op": "between", "value": [300, 8000]}`, "ben cai"},
		{"clv_predicted takes an integer value", `{"field": "clv_predicted", "op": "gt", "value": 8000}`, "ada eva"},
		{"expected_purchases over one", `{"field": "expected_purchases", "op": "gt", "value": 1}`, "ada eva"},
		{"expected_purchases is null", `{"field": "expected_purchases", "op": "is_null"}`, "dag fil"},
		{"a win-back segment: likely gone but once valuable",
			`{"all": [{"field": "p_alive", "op": "lt", "value": 0.5}, {"field": "spend_365d", "op": "gt", "value": 15000}]}`, "ben"},
		// member_metrics holds 500 days and no orders for everyone; the live figures ignore that.
		{"days since last purchase stays live, not the stored figure", `{"field": "days_since_last_purchase", "op": "lt", "value": 30}`, "ada eva"},
		{"orders_365d stays live, not the stored figure", `{"field": "orders_365d", "op": "gte", "value": 2}`, "ada eva"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(f.members(t, mustParse(t, tt.tree)), " ")
			if got != tt.want {
				t.Errorf("got [%s], want [%s]", got, tt.want)
			}
		})
	}
}

func TestModelFiguresWithoutAnyRunAreNull(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct{ name, tree, want string }{
		{"no member matches a comparison", `{"field": "p_alive", "op": "lt", "value": 1}`, ""},
		{"every member is null", `{"field": "clv_predicted", "op": "is_null"}`, "ada ben cai dag eva fil"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(f.members(t, mustParse(t, tt.tree)), " "); got != tt.want {
				t.Errorf("got [%s], want [%s]", got, tt.want)
			}
		})
	}
}
