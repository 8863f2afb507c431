package metrics_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/regulars/regulars/jobs/metrics"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// shop builds a small data set directly in the database, so that join dates and purchase
// times can be set to the minute.
type shop struct {
	t      *testing.T
	db     *models.DB
	stores map[string]int64
	n      int
}

func newShop(t *testing.T, storeCodes ...string) *shop {
	t.Helper()
	s := &shop{t: t, db: dbtest.New(t), stores: map[string]int64{}}
	for _, code := range storeCodes {
		st, err := s.db.CreateStore(context.Background(), models.StoreInput{Code: code, Name: code, Timezone: "Europe/Oslo", Currency: "NOK"})
		if err != nil {
			t.Fatalf("create store %s: %v", code, err)
		}
		s.stores[code] = st.ID
	}
	return s
}

// member adds a member with home store code ("" for none) who joined at joined (RFC 3339).
func (s *shop) member(code, joined, status string) int64 {
	s.t.Helper()
	s.n++
	var home *int64
	if code != "" {
		id := s.stores[code]
		home = &id
	}
	var id int64
	err := s.db.Pool.QueryRow(context.Background(), `
		INSERT INTO members (card, name, home_store_id, status, source, joined_at)
		VALUES ($1, $2, $3, $4, 'test', $5) RETURNING id`,
		fmt.Sprintf("70000000%05d", s.n), fmt.Sprintf("M%d", s.n), home, status, mustTime(s.t, joined)).Scan(&id)
	if err != nil {
		s.t.Fatalf("create member: %v", err)
	}
	return id
}

// txn records a transaction at store oslo-1 (the store of a purchase plays no part in the
// metrics; segments go by the member). memberID 0 is an anonymous sale.
func (s *shop) txn(memberID int64, kind, at string, amount int64) {
	s.t.Helper()
	s.n++
	var member *int64
	if memberID != 0 {
		member = &memberID
	}
	_, err := s.db.Pool.Exec(context.Background(), `
		INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, content_hash)
		VALUES ($1, $2, $3, $4, $5, 'NOK', $6, '\x00')`,
		s.stores["oslo-1"], fmt.Sprintf("T-%d", s.n), kind, mustTime(s.t, at), amount, member)
	if err != nil {
		s.t.Fatalf("record transaction: %v", err)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func oslo(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// asOf is the as-of date of the worked example: A = 2026-04-01 00:00 Europe/Oslo (CEST, +02:00).
// With W = 365 the window is [2025-04-01 00:00+02, 2026-04-01 00:00+02); with P = 90 the churn
// periods are [A−2P, A−P) = [2025-10-03 00:00+02, 2026-01-01 00:00+01) and
// [A−P, A) = [2026-01-01 00:00+01, 2026-04-01 00:00+02). (Jan 31 + Feb 28 + Mar 31 = 90 days;
// Oct 3 → Jan 1 is 29 + 30 + 31 = 90 days.)
var asOf = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)

// example builds the worked example of docs/metrics.md. Nine members, three stores (trondheim-1
// has nobody), cohorts by the quarter of joining in Oslo.
func example(t *testing.T) *shop {
	t.Helper()
	s := newShop(t, "oslo-1", "bergen-1", "trondheim-1")
	// M1, oslo-1, 2025-Q1: two sales in the window and a refund → orders 2, net 10000+20000−5000 = 25000.
	// No sale in [A−2P, A−P): not in the churn base.
	m1 := s.member("oslo-1", "2025-01-15T12:00:00+01:00", "active")
	s.txn(m1, "sale", "2025-06-10T12:00:00+02:00", 10000)
	s.txn(m1, "sale", "2026-02-10T12:00:00+01:00", 20000)
	s.txn(m1, "refund", "2026-02-11T12:00:00+01:00", 5000)
	// M2, oslo-1, joined 00:30 Oslo on 1 April 2025 = 31 March 22:30 UTC: cohort 2025-Q2 in Oslo
	// (2025-Q1 in UTC). A sale at 23:30 local the day before A is inside the window (it is
	// 21:30 UTC). Orders 2, net 12000; churn base yes, bought again in [A−P, A): not churned.
	m2 := s.member("oslo-1", "2025-04-01T00:30:00+02:00", "active")
	s.txn(m2, "sale", "2025-11-15T12:00:00+01:00", 8000)
	s.txn(m2, "sale", "2026-03-31T23:30:00+02:00", 4000)
	// M3, bergen-1, 2025-Q3: one sale in the churn base and none after → churned. The sale at
	// 00:10 local on A's date (22:10 UTC the day before) is outside the window. Orders 1, net 6000.
	m3 := s.member("bergen-1", "2025-09-01T12:00:00+02:00", "active")
	s.txn(m3, "sale", "2025-12-20T12:00:00+01:00", 6000)
	s.txn(m3, "sale", "2026-04-01T00:10:00+02:00", 7000)
	// M4, bergen-1, 2025-Q2: sales exactly at A−2P (first instant of the churn base: inside) and
	// exactly at A−P (first instant of the last period: inside it, not in the base) → in the
	// base, not churned. Orders 2, net 5000.
	m4 := s.member("bergen-1", "2025-05-01T12:00:00+02:00", "active")
	s.txn(m4, "sale", "2025-10-03T00:00:00+02:00", 3000)
	s.txn(m4, "sale", "2026-01-01T00:00:00+01:00", 2000)
	// M5, oslo-1, 2024-Q4: a sale one minute before A−2P (in the window, not the base) and one a
	// minute before A−P (the base's last minute) → in the base, churned. Orders 2, net 8000.
	m5 := s.member("oslo-1", "2024-11-01T12:00:00+01:00", "active")
	s.txn(m5, "sale", "2025-10-02T23:59:00+02:00", 7000)
	s.txn(m5, "sale", "2025-12-31T23:59:00+01:00", 1000)
	// M6, oslo-1, 2025-Q1: a refund larger than the purchases → orders 1, net 3000−9000 = −6000.
	m6 := s.member("oslo-1", "2025-02-01T12:00:00+01:00", "active")
	s.txn(m6, "sale", "2025-07-01T12:00:00+02:00", 3000)
	s.txn(m6, "refund", "2025-08-01T12:00:00+02:00", 9000)
	// M7, bergen-1, joined after the window (2026-Q2) and bought after A: a member, not a customer.
	m7 := s.member("bergen-1", "2026-05-01T12:00:00+02:00", "active")
	s.txn(m7, "sale", "2026-05-02T12:00:00+02:00", 5000)
	// M8, no home store, erased, 2024-Q2: still counts in all and its cohort. Orders 1, net 4000.
	m8 := s.member("", "2024-06-01T12:00:00+02:00", "erased")
	s.txn(m8, "sale", "2025-09-01T12:00:00+02:00", 4000)
	// M9, oslo-1, joined 00:30 Oslo on 1 January 2025 = 31 December 2024 23:30 UTC: cohort
	// 2025-Q1 in Oslo (2024-Q4 in UTC). Its only sale is a minute before the window: no customer.
	m9 := s.member("oslo-1", "2025-01-01T00:30:00+01:00", "active")
	s.txn(m9, "sale", "2025-03-31T23:59:00+02:00", 9999)
	// An anonymous sale in the window counts nowhere.
	s.txn(0, "sale", "2025-12-01T12:00:00+01:00", 100000)
	return s
}

func f(v float64) *float64 { return &v }

// lifespanHalf is the lifespan at a churn rate of 1/2 per 90 days: annual churn =
// 1 − 0.5^(365/90) = 1 − 0.5^4.0556 ≈ 1 − 0.06014 = 0.93986, lifespan = 1 ÷ 0.93986 ≈ 1.06399 years.
var lifespanHalf = 1 / (1 - math.Pow(0.5, 365.0/90))

func TestComputeWorkedExample(t *testing.T) {
	s := example(t)
	ctx := context.Background()
	runID, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := metrics.Latest(ctx, s.db, &asOf)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Run.ID != runID || !snap.Run.AsOf.Equal(asOf) || snap.Run.Timezone != "Europe/Oslo" ||
		snap.Run.WindowDays != 365 || snap.Run.ChurnPeriodDays != 90 || snap.Run.LifespanCapYears != 10 {
		t.Fatalf("run = %+v, want run %d as of 2026-04-01 in Europe/Oslo with the defaults", snap.Run, runID)
	}
	want := map[string]metrics.SegmentMetrics{
		// M1–M9. Customers M1 M2 M3 M4 M5 M6 M8 = 7; two or more purchases M1 M2 M4 M5 = 4.
		// Orders 2+2+1+2+2+1+1 = 11; net 25000+12000+6000+5000+8000−6000+4000 = 54000.
		// Churn base M2 M3 M4 M5, churned M3 M5: 2/4.
		// CLV = 54000/11 × 11/7 × L = 54000/7 × 1.06399 ≈ 8207.9.
		"all": {Members: 9, Customers: 7, RepeatPurchaseRate: f(4.0 / 7), Orders: 11, NetRevenue: 54000,
			AOV: f(54000.0 / 11), PurchaseFrequency: f(11.0 / 7), ChurnRate: f(0.5),
			LifespanYears: f(lifespanHalf), CLVHistoric: f(54000.0 / 11 * 11 / 7 * lifespanHalf)},
		// M1 M2 M5 M6 M9. Customers M1 M2 M5 M6 = 4, repeaters M1 M2 M5 = 3.
		// Orders 2+2+2+1 = 7, net 25000+12000+8000−6000 = 39000. Base M2 M5, churned M5.
		"store:oslo-1": {Members: 5, Customers: 4, RepeatPurchaseRate: f(3.0 / 4), Orders: 7, NetRevenue: 39000,
			AOV: f(39000.0 / 7), PurchaseFrequency: f(7.0 / 4), ChurnRate: f(0.5),
			LifespanYears: f(lifespanHalf), CLVHistoric: f(39000.0 / 4 * lifespanHalf)},
		// M3 M4 M7. Customers M3 M4, repeater M4. Orders 1+2 = 3, net 6000+5000 = 11000.
		// Base M3 M4, churned M3.
		"store:bergen-1": {Members: 3, Customers: 2, RepeatPurchaseRate: f(1.0 / 2), Orders: 3, NetRevenue: 11000,
			AOV: f(11000.0 / 3), PurchaseFrequency: f(3.0 / 2), ChurnRate: f(0.5),
			LifespanYears: f(lifespanHalf), CLVHistoric: f(11000.0 / 2 * lifespanHalf)},
		// Nobody: every ratio is NULL.
		"store:trondheim-1": {},
		// M8 (erased). One purchase: repeat rate 0; no purchase before A−P: churn NULL, so
		// lifespan and CLV are NULL too.
		"cohort:2024-Q2": {Members: 1, Customers: 1, RepeatPurchaseRate: f(0), Orders: 1, NetRevenue: 4000,
			AOV: f(4000), PurchaseFrequency: f(1)},
		// M5: churned, the only one in its base: churn 1, annual churn 1 − 0^4.06 = 1, lifespan
		// 1 year, CLV = 4000 × 2 × 1.
		"cohort:2024-Q4": {Members: 1, Customers: 1, RepeatPurchaseRate: f(1), Orders: 2, NetRevenue: 8000,
			AOV: f(4000), PurchaseFrequency: f(2), ChurnRate: f(1), LifespanYears: f(1), CLVHistoric: f(8000)},
		// M1 M6 M9 (M9 by Oslo time). Customers M1 M6, repeater M1. Orders 3,
		// net 25000−6000 = 19000. Neither bought in [A−2P, A−P): churn NULL.
		"cohort:2025-Q1": {Members: 3, Customers: 2, RepeatPurchaseRate: f(1.0 / 2), Orders: 3, NetRevenue: 19000,
			AOV: f(19000.0 / 3), PurchaseFrequency: f(3.0 / 2)},
		// M2 (by Oslo time) M4: both repeat, orders 4, net 17000, AOV 4250, frequency 2.
		// Both in the base, neither churned: churn 0, lifespan = the cap 10, CLV 4250 × 2 × 10.
		"cohort:2025-Q2": {Members: 2, Customers: 2, RepeatPurchaseRate: f(1), Orders: 4, NetRevenue: 17000,
			AOV: f(4250), PurchaseFrequency: f(2), ChurnRate: f(0), LifespanYears: f(10), CLVHistoric: f(85000)},
		// M3: one order of 6000, churned: lifespan 1, CLV 6000 × 1 × 1.
		"cohort:2025-Q3": {Members: 1, Customers: 1, RepeatPurchaseRate: f(0), Orders: 1, NetRevenue: 6000,
			AOV: f(6000), PurchaseFrequency: f(1), ChurnRate: f(1), LifespanYears: f(1), CLVHistoric: f(6000)},
		// M7 joined after the window: a member, no customer.
		"cohort:2026-Q2": {Members: 1},
	}
	got := map[string]metrics.SegmentMetrics{}
	for _, m := range snap.Segments {
		got[m.Segment] = m
	}
	for segment, w := range want {
		t.Run(segment+" has the hand-worked figures", func(t *testing.T) {
			g, ok := got[segment]
			if !ok {
				t.Fatalf("segment missing; got %v", keys(got))
			}
			checkCount(t, "members", g.Members, w.Members)
			checkCount(t, "customers", g.Customers, w.Customers)
			checkCount(t, "orders", g.Orders, w.Orders)
			checkCount(t, "net_revenue", g.NetRevenue, w.NetRevenue)
			checkRatio(t, "repeat_purchase_rate", g.RepeatPurchaseRate, w.RepeatPurchaseRate)
			checkRatio(t, "aov", g.AOV, w.AOV)
			checkRatio(t, "purchase_frequency", g.PurchaseFrequency, w.PurchaseFrequency)
			checkRatio(t, "churn_rate", g.ChurnRate, w.ChurnRate)
			checkRatio(t, "lifespan_years", g.LifespanYears, w.LifespanYears)
			checkRatio(t, "clv_historic", g.CLVHistoric, w.CLVHistoric)
			// Nine members do not determine a BG/NBD fit (it does not converge; the run records
			// that in metric_models), so the model figures stay NULL here; model_test.go covers them.
			for name, v := range map[string]*float64{"p_alive": g.PAlive, "expected_purchases": g.ExpectedPurchases,
				"clv_predicted": g.CLVPredicted, "expected_churned": g.ExpectedChurned} {
				if v != nil {
					t.Errorf("%s = %v, want NULL: the BG/NBD fit on nine members does not converge", name, *v)
				}
			}
		})
	}
	t.Run("no other segments are reported", func(t *testing.T) {
		// The eight rfm: segments are checked in rfm_test.go, the two rewards: ones (empty
		// here: no points) in rewards_test.go.
		if len(got) != len(want)+len(metrics.RFMSegmentNames)+2 {
			t.Errorf("segments = %v, want %d of them, the rfm: ones and the two rewards: ones", keys(got), len(want))
		}
	})
}

func TestComputeSettings(t *testing.T) {
	s := example(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		opts    metrics.Options
		segment string
		metric  func(metrics.SegmentMetrics) *float64
		want    float64
	}{
		{
			// W = 730 days: the window is [2024-04-01, 2026-04-01) and takes in M9's sale.
			// oslo-1: customers M1 M2 M5 M6 M9 = 5, orders 2+2+2+1+1 = 8: 8/5 × 365/730 = 0.8 a year.
			name:    "a two-year window gives purchases per year",
			opts:    metrics.Options{WindowDays: 730},
			segment: "store:oslo-1", metric: func(m metrics.SegmentMetrics) *float64 { return m.PurchaseFrequency },
			want: 0.8,
		},
		{
			// cohort:2025-Q2 has churn 0: lifespan is the cap, now 5.
			name:    "zero churn gives the configured cap",
			opts:    metrics.Options{LifespanCapYears: 5},
			segment: "cohort:2025-Q2", metric: func(m metrics.SegmentMetrics) *float64 { return m.LifespanYears },
			want: 5,
		},
		{
			// all: lifespan 1.064 years is above a cap of 1, so the cap wins.
			name:    "a cap below the lifespan cuts it",
			opts:    metrics.Options{LifespanCapYears: 1},
			segment: "all", metric: func(m metrics.SegmentMetrics) *float64 { return m.LifespanYears },
			want: 1,
		},
		{
			// P = 30 days: [A−2P, A−P) = [2026-01-31, 2026-03-02), [A−P, A) = [2026-03-02, A).
			// In the base only M1 (2026-02-10), who did not buy again: churn 1.
			name:    "the churn period is a setting",
			opts:    metrics.Options{ChurnPeriodDays: 30},
			segment: "all", metric: func(m metrics.SegmentMetrics) *float64 { return m.ChurnRate },
			want: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.AsOf, tt.opts.Timezone = asOf, oslo(t)
			runID, err := metrics.Compute(ctx, s.db, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := metrics.Latest(ctx, s.db, &asOf)
			if err != nil {
				t.Fatal(err)
			}
			if snap.Run.ID != runID {
				t.Fatalf("latest run = %d, want %d", snap.Run.ID, runID)
			}
			for _, m := range snap.Segments {
				if m.Segment == tt.segment {
					checkRatio(t, tt.segment, tt.metric(m), &tt.want)
					return
				}
			}
			t.Fatalf("no segment %s", tt.segment)
		})
	}
}

func TestComputeEmptyDatabase(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	if _, err := metrics.Compute(ctx, db, metrics.Options{AsOf: asOf}); err != nil {
		t.Fatal(err)
	}
	snap, err := metrics.Latest(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []metrics.SegmentMetrics{{Segment: "all"}, {Segment: "rewards:redeemers"}, {Segment: "rewards:non-redeemers"}}
	for _, name := range metrics.RFMSegmentNames {
		want = append(want, metrics.SegmentMetrics{Segment: "rfm:" + name})
	}
	got := map[metrics.SegmentMetrics]bool{}
	for _, seg := range snap.Segments {
		// The line counts are zero, not NULL (the run computed them); set aside so that the
		// rows compare as values.
		for _, n := range []**int64{&seg.Units, &seg.ItemisedOrders, &seg.Lines, &seg.UnknownCostLines} {
			if *n == nil || **n != 0 {
				t.Errorf("%s: a line count is %v, want 0", seg.Segment, *n)
			}
			*n = nil
		}
		got[seg] = true
	}
	if len(snap.Segments) != len(want) || !allIn(want, got) {
		t.Errorf("segments = %+v, want all, every rfm: segment and the two rewards: ones, with zero counts and NULL ratios", snap.Segments)
	}
}

func TestComputeRejectsBadOptions(t *testing.T) {
	db := dbtest.New(t)
	tests := []struct {
		name string
		opts metrics.Options
	}{
		{"a negative window is refused", metrics.Options{WindowDays: -1}},
		{"a negative churn period is refused", metrics.Options{ChurnPeriodDays: -5}},
		{"a negative cap is refused", metrics.Options{LifespanCapYears: -1}},
		{"the process-local zone is refused, PostgreSQL cannot read it", metrics.Options{Timezone: time.Local}},
		{"a negative horizon is refused", metrics.Options{HorizonDays: -30}},
		{"a negative discount rate is refused", metrics.Options{MonthlyDiscountRate: f(-0.01)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := metrics.Compute(context.Background(), db, tt.opts)
			if models.ErrorCode(err) != models.EINVALID {
				t.Errorf("err = %v, want EINVALID", err)
			}
		})
	}
}

// TestComputeOneRunAtATime holds a lock on metric_runs so that whichever Compute takes the
// advisory lock first waits inside its run; the other must then fail at once with ECONFLICT.
// Only after that failure is the table released, so the order is forced, not timed.
func TestComputeOneRunAtATime(t *testing.T) {
	s := example(t)
	ctx := context.Background()
	blocker, err := s.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = blocker.Rollback(ctx) }()
	// SHARE conflicts with the ROW EXCLUSIVE lock the run's INSERT needs.
	if _, err := blocker.Exec(ctx, `LOCK TABLE metric_runs IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	type result struct {
		runID int64
		err   error
	}
	results := make(chan result, 2)
	loc := oslo(t)
	for range 2 {
		go func() {
			id, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: loc})
			results <- result{id, err}
		}()
	}
	first := <-results
	if models.ErrorCode(first.err) != models.ECONFLICT {
		t.Fatalf("first result = %+v, want ECONFLICT while the other run holds the lock", first)
	}
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	second := <-results
	if second.err != nil {
		t.Fatalf("the run holding the lock failed: %v", second.err)
	}
	var runs int
	if err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM metric_runs`).Scan(&runs); err != nil {
		t.Fatal(err)
	}
	if runs != 1 {
		t.Errorf("runs = %d, want 1", runs)
	}
}

func TestLatestAndSeries(t *testing.T) {
	s := example(t)
	ctx := context.Background()
	earlier := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range []time.Time{earlier, asOf} {
		if _, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: d, Timezone: oslo(t)}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("latest without a date is the newest as-of date", func(t *testing.T) {
		snap, err := metrics.Latest(ctx, s.db, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !snap.Run.AsOf.Equal(asOf) {
			t.Errorf("as_of = %v, want %v", snap.Run.AsOf, asOf)
		}
	})
	t.Run("latest of a date without a run is not found", func(t *testing.T) {
		d := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		if _, err := metrics.Latest(ctx, s.db, &d); models.ErrorCode(err) != models.ENOTFOUND {
			t.Errorf("err = %v, want ENOTFOUND", err)
		}
	})
	t.Run("a series has one point per as-of date, oldest first", func(t *testing.T) {
		points, err := metrics.Series(ctx, s.db, "all", "orders", earlier, asOf)
		if err != nil {
			t.Fatal(err)
		}
		// As of 2025-10-01 the window is [2024-10-01, 2025-10-01): M1 2025-06-10, M5 none
		// (2025-10-02 is after), M6 2025-07-01, M8 2025-09-01, M9 2025-03-31 → 4 orders.
		// As of 2026-04-01: 11, as in the worked example.
		if len(points) != 2 || !points[0].AsOf.Equal(earlier) || *points[0].Value != 4 ||
			!points[1].AsOf.Equal(asOf) || *points[1].Value != 11 {
			t.Errorf("points = %v, want 4 on 2025-10-01 and 11 on 2026-04-01", describe(points))
		}
	})
	t.Run("an unknown metric is invalid", func(t *testing.T) {
		if _, err := metrics.Series(ctx, s.db, "all", "orders; DROP TABLE members", earlier, asOf); models.ErrorCode(err) != models.EINVALID {
			t.Errorf("err = %v, want EINVALID", err)
		}
	})
}

func allIn(want []metrics.SegmentMetrics, got map[metrics.SegmentMetrics]bool) bool {
	for _, w := range want {
		if !got[w] {
			return false
		}
	}
	return true
}

func checkCount(t *testing.T, name string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", name, got, want)
	}
}

// checkRatio compares a numeric figure to its hand-worked value to 1e-9 relative: PostgreSQL
// computes in numeric, the test in float64.
func checkRatio(t *testing.T, name string, got, want *float64) {
	t.Helper()
	switch {
	case want == nil && got != nil:
		t.Errorf("%s = %v, want NULL", name, *got)
	case want != nil && got == nil:
		t.Errorf("%s = NULL, want %v", name, *want)
	case want != nil && math.Abs(*got-*want) > 1e-9*math.Max(1, math.Abs(*want)):
		t.Errorf("%s = %v, want %v", name, *got, *want)
	}
}

func keys(m map[string]metrics.SegmentMetrics) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func describe(points []metrics.Point) string {
	s := ""
	for _, p := range points {
		v := "NULL"
		if p.Value != nil {
			v = fmt.Sprint(*p.Value)
		}
		s += fmt.Sprintf("%s=%s ", p.AsOf.Format(time.DateOnly), v)
	}
	return s
}
