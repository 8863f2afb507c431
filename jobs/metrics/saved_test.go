package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/jobs/metrics"
)

func TestSavedSegmentsAreAFamilyEvaluatedAsOfA(t *testing.T) {
	s := example(t)
	ctx := context.Background()
	save := func(name, rules string) int64 {
		t.Helper()
		saved, err := segments.Create(ctx, s.db, segments.SavedInput{Name: name, Rules: json.RawMessage(rules)})
		if err != nil {
			t.Fatal(err)
		}
		return saved.ID
	}
	// Of the worked example (metrics_test.go), as of A:
	// oslo-1 members with two or more purchases in the window: M1 M2 M5 (M6 has one, M9 none).
	// All three are customers and repeaters: repeat rate 1. Orders 6, net 25000+12000+8000.
	// Churn base M2 M5 (a sale in [A−2P, A−P)), churned M5: 1/2.
	osloRepeaters := save("Oslo repeaters", `{"all": [{"field": "home_store", "op": "eq", "value": "oslo-1"},
		{"field": "orders_365d", "op": "gte", "value": 2}]}`)
	// Last purchase before A under 110 days before A: M1 (Feb 10), M2 (Mar 31), M3 (Dec 20:
	// 101 days), M4 (Jan 1: 89), M5 (Dec 31: 90). Not M7, whose only sale is after A: measured
	// at the real clock, nobody in the example would be this recent. Customers 5, repeaters
	// M1 M2 M4 M5: 4/5. Orders 2+2+1+2+2 = 9, net 25000+12000+6000+5000+8000 = 56000.
	// Churn base M2 M3 M4 M5, churned M3 M5: 1/2.
	recent := save("Recent", `{"field": "days_since_last_purchase", "op": "lt", "value": 110}`)
	// Nobody calls trondheim-1 home: reported, empty.
	empty := save("Trondheim", `{"field": "home_store", "op": "eq", "value": "trondheim-1"}`)
	// A stored tree that no longer compiles is left out, and the run still succeeds.
	var broken int64
	if err := s.db.Pool.QueryRow(ctx, `INSERT INTO segments (name, rules) VALUES ('broken', '{"field": "gone", "op": "eq", "value": 1}') RETURNING id`).Scan(&broken); err != nil {
		t.Fatal(err)
	}

	if _, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)}); err != nil {
		t.Fatal(err)
	}
	snap, err := metrics.Latest(ctx, s.db, &asOf)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]metrics.SegmentMetrics{}
	for _, g := range snap.Segments {
		got[g.Segment] = g
	}
	want := []struct {
		name string
		id   int64
		w    metrics.SegmentMetrics
	}{
		{"a saved segment has the hand-worked figures", osloRepeaters, metrics.SegmentMetrics{Members: 3, Customers: 3,
			RepeatPurchaseRate: f(1), Orders: 6, NetRevenue: 45000, AOV: f(7500), PurchaseFrequency: f(2),
			ChurnRate: f(0.5), LifespanYears: f(lifespanHalf), CLVHistoric: f(7500 * 2 * lifespanHalf)}},
		{"purchase figures in the rules are measured as of A", recent, metrics.SegmentMetrics{Members: 5, Customers: 5,
			RepeatPurchaseRate: f(4.0 / 5), Orders: 9, NetRevenue: 56000, AOV: f(56000.0 / 9), PurchaseFrequency: f(9.0 / 5),
			ChurnRate: f(0.5), LifespanYears: f(lifespanHalf), CLVHistoric: f(56000.0 / 5 * lifespanHalf)}},
		{"an empty saved segment is reported with no figures", empty, metrics.SegmentMetrics{}},
	}
	for _, w := range want {
		t.Run(w.name, func(t *testing.T) {
			g, ok := got[fmt.Sprintf("segment:%d", w.id)]
			if !ok {
				t.Fatalf("segment:%d missing; got %v", w.id, keys(got))
			}
			checkCount(t, "members", g.Members, w.w.Members)
			checkCount(t, "customers", g.Customers, w.w.Customers)
			checkCount(t, "orders", g.Orders, w.w.Orders)
			checkCount(t, "net_revenue", g.NetRevenue, w.w.NetRevenue)
			checkRatio(t, "repeat_purchase_rate", g.RepeatPurchaseRate, w.w.RepeatPurchaseRate)
			checkRatio(t, "aov", g.AOV, w.w.AOV)
			checkRatio(t, "purchase_frequency", g.PurchaseFrequency, w.w.PurchaseFrequency)
			checkRatio(t, "churn_rate", g.ChurnRate, w.w.ChurnRate)
			checkRatio(t, "lifespan_years", g.LifespanYears, w.w.LifespanYears)
			checkRatio(t, "clv_historic", g.CLVHistoric, w.w.CLVHistoric)
		})
	}
	t.Run("a saved segment whose rules no longer compile is left out", func(t *testing.T) {
		if _, ok := got[fmt.Sprintf("segment:%d", broken)]; ok {
			t.Errorf("segment:%d reported", broken)
		}
	})
	t.Run("a run without the saved family reports no saved segment", func(t *testing.T) {
		d := asOf.AddDate(0, 0, 1)
		if _, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: d, Timezone: oslo(t),
			Families: metrics.DefaultFamilies()[:1]}); err != nil {
			t.Fatal(err)
		}
		snap, err := metrics.Latest(ctx, s.db, &d)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Segments) != 1 || snap.Segments[0].Segment != "all" {
			t.Errorf("segments %v, want only all", snap.Segments)
		}
	})
}
