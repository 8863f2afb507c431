package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/jobs/clv"
	"github.com/regulars/regulars/jobs/metrics"
)

// memberRow is a member_metrics row as the tests read it.
type memberRow struct {
	memberID                                         int64
	home, rfm                                        string
	daysSince, frequency, recency, age               *int
	orders365, spend365                              int64
	monetary                                         *float64
	pAlive, expectedPurchases, expectedSpend, clvPre *float64
}

func readMemberMetrics(t *testing.T, s *shop) map[int64]memberRow {
	t.Helper()
	rows, err := s.db.Pool.Query(context.Background(), `
		SELECT mm.member_id, coalesce(st.code, ''), coalesce(mm.rfm_segment, ''), mm.days_since_last_purchase, mm.frequency,
		       mm.recency_days, mm.t_days, mm.orders_365d, mm.spend_365d, mm.monetary_value::float8,
		       mm.p_alive, mm.expected_purchases, mm.expected_spend, mm.clv_predicted
		FROM member_metrics mm JOIN members m ON m.id = mm.member_id
		LEFT JOIN stores st ON st.id = m.home_store_id`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]memberRow{}
	for rows.Next() {
		var r memberRow
		if err := rows.Scan(&r.memberID, &r.home, &r.rfm, &r.daysSince, &r.frequency, &r.recency, &r.age,
			&r.orders365, &r.spend365, &r.monetary, &r.pAlive, &r.expectedPurchases, &r.expectedSpend, &r.clvPre); err != nil {
			t.Fatal(err)
		}
		out[r.memberID] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func ip(v int) *int { return &v }

// TestMemberSummary checks the lifetimes-style summary of each member against values worked out
// by hand. A = 2026-04-01 00:00 Europe/Oslo; T counts calendar days from the first purchase day.
func TestMemberSummary(t *testing.T) {
	s := newShop(t, "oslo-1")
	// Two sales on 10 June count as one day; on 1 September a refund of 500 lowers that day's net
	// to 1500. Days 2025-06-10, 2025-09-01, 2026-01-10: x = 2, t_x = 214, T = 295 (June 10 →
	// Jan 10 = 20+31+31+30+31+30+31+10; then +21+28+31+1 to April 1); monetary = (1500+3000)/2.
	sameDay := s.member("oslo-1", "2025-01-01T12:00:00+01:00", "active")
	s.txn(sameDay, "sale", "2025-06-10T09:00:00+02:00", 1000)
	s.txn(sameDay, "sale", "2025-06-10T18:00:00+02:00", 500)
	s.txn(sameDay, "sale", "2025-09-01T12:00:00+02:00", 2000)
	s.txn(sameDay, "refund", "2025-09-01T15:00:00+02:00", 500)
	s.txn(sameDay, "sale", "2026-01-10T12:00:00+01:00", 3000)
	// 23:30 and 00:30 local are two Oslo days (both 1 October in UTC): x = 1, t_x = 1,
	// T = 182 (Oct 1 → Apr 1 = 31+30+31+31+28+31), monetary 4000.
	midnight := s.member("oslo-1", "2025-01-01T12:00:00+01:00", "active")
	s.txn(midnight, "sale", "2025-10-01T23:30:00+02:00", 3000)
	s.txn(midnight, "sale", "2025-10-02T00:30:00+02:00", 4000)
	// One sale a minute before A: x = 0, t_x = 0, T = 1, no monetary value.
	before := s.member("oslo-1", "2025-01-01T12:00:00+01:00", "active")
	s.txn(before, "sale", "2026-03-31T23:59:00+02:00", 1500)
	// One sale exactly at A (and one later): no purchase before A, so no summary at all.
	after := s.member("oslo-1", "2025-01-01T12:00:00+01:00", "active")
	s.txn(after, "sale", "2026-04-01T00:00:00+02:00", 1500)
	s.txn(after, "sale", "2026-05-01T12:00:00+02:00", 1500)
	// A refund larger than the repeat day's sale: x = 1, t_x = 35, T = 121, monetary −2000.
	negative := s.member("oslo-1", "2025-01-01T12:00:00+01:00", "active")
	s.txn(negative, "sale", "2025-12-01T12:00:00+01:00", 1000)
	s.txn(negative, "sale", "2026-01-05T12:00:00+01:00", 1000)
	s.txn(negative, "refund", "2026-01-05T13:00:00+01:00", 3000)
	// A purchase more than 365 days before A counts in the summary, not in orders_365d.
	old := s.member("oslo-1", "2024-01-01T12:00:00+01:00", "active")
	s.txn(old, "sale", "2025-03-31T23:59:00+02:00", 800)
	s.txn(old, "sale", "2025-04-01T00:01:00+02:00", 900)
	nothing := s.member("oslo-1", "2025-01-01T12:00:00+01:00", "active")

	if _, err := metrics.Compute(context.Background(), s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)}); err != nil {
		t.Fatalf("compute: %v", err)
	}
	got := readMemberMetrics(t, s)
	tests := []struct {
		name                       string
		id                         int64
		daysSince, x, recency, age *int
		monetary                   *float64
		orders, spend              int64
	}{
		{"two sales on one local day count as one day and a refund lowers its net", sameDay, ip(81), ip(2), ip(214), ip(295), f(2250), 4, 6000},
		{"sales either side of local midnight are two days", midnight, ip(181), ip(1), ip(1), ip(182), f(4000), 2, 7000},
		{"a single purchase just before A has x = 0 and T = 1", before, ip(1), ip(0), ip(0), ip(1), nil, 1, 1500},
		{"purchases from A on leave the member without a summary", after, nil, nil, nil, nil, nil, 0, 0},
		{"a refund larger than the repeat sale gives a negative monetary value", negative, ip(86), ip(1), ip(35), ip(121), f(-2000), 2, -1000},
		{"a purchase before the last 365 days counts in the summary only", old, ip(365), ip(1), ip(1), ip(366), f(900), 1, 900},
		{"a member without transactions has only zero counts", nothing, nil, nil, nil, nil, nil, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := got[tc.id]
			if !ok {
				t.Fatalf("member %d has no member_metrics row", tc.id)
			}
			checkInt(t, "days_since_last_purchase", r.daysSince, tc.daysSince)
			checkInt(t, "frequency", r.frequency, tc.x)
			checkInt(t, "recency_days", r.recency, tc.recency)
			checkInt(t, "t_days", r.age, tc.age)
			checkRatio(t, "monetary_value", r.monetary, tc.monetary)
			checkCount(t, "orders_365d", r.orders365, tc.orders)
			checkCount(t, "spend_365d", r.spend365, tc.spend)
			if tc.x == nil && (r.pAlive != nil || r.expectedPurchases != nil || r.clvPre != nil) {
				t.Errorf("model figures %v %v %v, want NULL without a purchase before A", r.pAlive, r.expectedPurchases, r.clvPre)
			}
		})
	}
}

func checkInt(t *testing.T, name string, got, want *int) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s = %v, want %v", name, deref(got), deref(want))
	case *got != *want:
		t.Errorf("%s = %d, want %d", name, *got, *want)
	}
}

func deref(p *int) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprint(*p)
}

// simulatedShop draws purchase histories from a BG/NBD-like process (Gamma-distributed daily
// rates, drop-out after each purchase with probability 0.3, log-normal amounts) for 400
// members split between two home stores, with a fixed seed so the fit is the same every run.
func simulatedShop(t *testing.T) *shop {
	t.Helper()
	ctx := context.Background()
	s := newShop(t, "oslo-1", "bergen-1")
	var ids []int64
	rows, err := s.db.Pool.Query(ctx, `
		INSERT INTO members (card, name, home_store_id, status, source, joined_at)
		SELECT '9' || lpad(g::text, 12, '0'), 'Sim ' || g, CASE WHEN g % 2 = 0 THEN $1::bigint ELSE $2::bigint END,
		       'active', 'test', '2024-01-01T00:00:00Z'
		FROM generate_series(1, 400) g RETURNING id`, s.stores["oslo-1"], s.stores["bergen-1"])
	if err != nil {
		t.Fatal(err)
	}
	ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 7))
	a := time.Date(2026, 4, 1, 0, 0, 0, 0, oslo(t))
	var txns [][]any
	for _, id := range ids {
		// λ ~ Gamma(2, scale 1/60): a purchase every 30 days on average.
		rate := (rng.ExpFloat64() + rng.ExpFloat64()) / 60
		at := a.Add(-time.Duration(1+rng.IntN(700*24)) * time.Hour)
		for at.Before(a) {
			amount := int64(math.Round(30000 * math.Exp(0.5*rng.NormFloat64())))
			txns = append(txns, []any{s.stores["oslo-1"], fmt.Sprintf("S-%d", len(txns)), "sale", at, max(amount, 1), "NOK", id, []byte{0}})
			if rng.Float64() < 0.3 {
				break
			}
			at = at.Add(time.Duration(rng.ExpFloat64() / rate * 24 * float64(time.Hour)))
		}
	}
	if _, err := s.db.Pool.CopyFrom(ctx, pgx.Identifier{"transactions"},
		[]string{"store_id", "txn_id", "kind", "occurred_at", "amount_minor", "currency", "member_id", "content_hash"},
		pgx.CopyFromRows(txns)); err != nil {
		t.Fatal(err)
	}
	return s
}

type modelRow struct {
	params     json.RawMessage
	ll         *float64
	sample     int64
	converged  bool
	note       string
	groupCount int64
}

func readModels(t *testing.T, s *shop, runID int64) map[string]modelRow {
	t.Helper()
	rows, err := s.db.Pool.Query(context.Background(), `
		SELECT model, params, log_likelihood, sample_size, groups, converged, note
		FROM metric_models WHERE run_id = $1`, runID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]modelRow{}
	for rows.Next() {
		var name string
		var r modelRow
		if err := rows.Scan(&name, &r.params, &r.ll, &r.sample, &r.groupCount, &r.converged, &r.note); err != nil {
			t.Fatal(err)
		}
		out[name] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestModelFigures fits both models on a simulated history and checks the stored figures
// against jobs/clv called directly on the same summary, and the segment averages against the
// mean over member_metrics.
func TestModelFigures(t *testing.T) {
	s := simulatedShop(t)
	ctx := context.Background()
	runID, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)})
	if err != nil {
		t.Fatalf("compute: %v", err)
	}
	models := readModels(t, s, runID)
	bgRow, ggRow := models["bgnbd"], models["gamma_gamma"]
	t.Logf("BG/NBD %s ll=%v n=%d groups=%d converged=%v %s", bgRow.params, deref64(bgRow.ll), bgRow.sample, bgRow.groupCount, bgRow.converged, bgRow.note)
	t.Logf("Gamma-Gamma %s ll=%v n=%d groups=%d converged=%v %s", ggRow.params, deref64(ggRow.ll), ggRow.sample, ggRow.groupCount, ggRow.converged, ggRow.note)
	if !bgRow.converged || !ggRow.converged {
		t.Fatalf("fits did not converge: %q, %q", bgRow.note, ggRow.note)
	}
	var bg struct{ R, Alpha, A, B float64 }
	var gg struct{ P, Q, Gamma float64 }
	if err := json.Unmarshal(bgRow.params, &bg); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ggRow.params, &gg); err != nil {
		t.Fatal(err)
	}
	ms, err := metrics.LatestModels(ctx, s.db, &asOf)
	if err != nil {
		t.Fatal(err)
	}
	if ms.Run.ID != runID || ms.HorizonDays == nil || *ms.HorizonDays != 365 || ms.MonthlyDiscountRate == nil ||
		*ms.MonthlyDiscountRate != 0.01 || len(ms.Models) != 2 || ms.Models[0].Model != "bgnbd" ||
		ms.Models[0].Params["alpha"] != bg.Alpha || ms.Models[1].Params["gamma"] != gg.Gamma {
		t.Errorf("LatestModels = %+v, want run %d, H 365, d 0.01 and both fits", ms, runID)
	}
	bgp := clv.BGNBDParams{R: bg.R, Alpha: bg.Alpha, A: bg.A, B: bg.B}
	ggp := clv.GammaGammaParams{P: gg.P, Q: gg.Q, Gamma: gg.Gamma}

	members := readMemberMetrics(t, s)
	ids := make([]int64, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var customers, spenders int64
	var checked bool
	for _, id := range ids {
		r := members[id]
		if r.frequency == nil {
			continue
		}
		customers++
		if *r.frequency >= 1 && *r.monetary > 0 {
			spenders++
		}
		if r.pAlive == nil || *r.pAlive < 0 || *r.pAlive > 1 {
			t.Fatalf("member %d: p_alive %v, want in [0, 1]", r.memberID, deref64(r.pAlive))
		}
		if r.clvPre == nil || *r.clvPre < 0 || r.expectedPurchases == nil || *r.expectedPurchases < 0 {
			t.Fatalf("member %d: clv %v, expected purchases %v, want ≥ 0", r.memberID, deref64(r.clvPre), deref64(r.expectedPurchases))
		}
		if checked || *r.frequency < 2 {
			continue
		}
		// The first member with two repeat days, through jobs/clv directly: spend in major
		// units, back to minor.
		checked = true
		c := clv.Customer{Frequency: *r.frequency, Recency: float64(*r.recency), T: float64(*r.age)}
		pAlive, err := bgp.PAlive(c)
		if err != nil {
			t.Fatal(err)
		}
		purchases, err := bgp.ExpectedPurchases(c, 365)
		if err != nil {
			t.Fatal(err)
		}
		spend, err := ggp.ExpectedSpend(c.Frequency, *r.monetary/100)
		if err != nil {
			t.Fatal(err)
		}
		value, err := clv.CLV(bgp, c, spend, 365, 0.01)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("member %+v m=%v: p_alive %.6f, E[Y(365)] %.6f, spend %.2f, clv %.2f (minor)", c, *r.monetary, pAlive, purchases, spend*100, value*100)
		checkClose(t, "p_alive", *r.pAlive, pAlive)
		checkClose(t, "expected_purchases", *r.expectedPurchases, purchases)
		checkClose(t, "expected_spend", *r.expectedSpend, spend*100)
		checkClose(t, "clv_predicted", *r.clvPre, value*100)
	}
	if !checked {
		t.Fatal("no member with two repeat days to check")
	}
	checkCount(t, "BG/NBD sample size", bgRow.sample, customers)
	checkCount(t, "Gamma-Gamma sample size", ggRow.sample, spenders)

	snap, err := metrics.Latest(ctx, s.db, &asOf)
	if err != nil {
		t.Fatal(err)
	}
	for _, seg := range snap.Segments {
		t.Run("segment "+seg.Segment+" averages its customers' figures", func(t *testing.T) {
			var n, pSum, eSum, cSum float64
			for _, r := range members {
				// Everyone joined in 2024-Q1, so the cohort is everyone, as is all.
				everyone := seg.Segment == "all" || seg.Segment == "cohort:2024-Q1"
				if r.frequency == nil || (!everyone && seg.Segment != "store:"+r.home && seg.Segment != "rfm:"+r.rfm) {
					continue
				}
				n++
				pSum += *r.pAlive
				eSum += *r.expectedPurchases
				cSum += *r.clvPre
			}
			if n == 0 && (strings.HasPrefix(seg.Segment, "rfm:") || strings.HasPrefix(seg.Segment, "rewards:")) {
				// An RFM name the grid gives nobody here, or the rewards segments of a shop
				// without points: no figures to average.
				if seg.PAlive != nil || seg.ExpectedPurchases != nil || seg.CLVPredicted != nil || seg.ExpectedChurned != nil {
					t.Errorf("empty segment has model figures: %+v", seg)
				}
				return
			}
			if n == 0 {
				t.Fatalf("no customers in %s", seg.Segment)
			}
			if seg.PAlive == nil || seg.ExpectedPurchases == nil || seg.CLVPredicted == nil || seg.ExpectedChurned == nil {
				t.Fatalf("model figures missing: %+v", seg)
			}
			checkClose(t, "p_alive", *seg.PAlive, pSum/n)
			checkClose(t, "expected_purchases", *seg.ExpectedPurchases, eSum/n)
			checkClose(t, "clv_predicted", *seg.CLVPredicted, cSum/n)
			checkClose(t, "expected_churned", *seg.ExpectedChurned, 1-pSum/n)
		})
	}
}

// TestModelWithoutRepeats checks that a history where nobody came back completes the run with
// the historic figures and NULL model figures, recording why.
func TestModelWithoutRepeats(t *testing.T) {
	s := newShop(t, "oslo-1")
	for i := range 5 {
		m := s.member("oslo-1", "2025-01-01T12:00:00+01:00", "active")
		s.txn(m, "sale", fmt.Sprintf("2025-%02d-10T12:00:00+02:00", 5+i), 1000)
		s.txn(m, "sale", fmt.Sprintf("2025-%02d-10T15:00:00+02:00", 5+i), 1000) // same day: no repeat
	}
	ctx := context.Background()
	runID, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)})
	if err != nil {
		t.Fatalf("compute: %v", err)
	}
	models := readModels(t, s, runID)
	if r := models["bgnbd"]; r.params != nil || r.converged || !strings.Contains(r.note, "not identified") || r.sample != 5 {
		t.Errorf("bgnbd row = %+v, want no parameters, 5 members, a note saying not identified", r)
	}
	if r := models["gamma_gamma"]; r.params != nil || r.note == "" || r.sample != 0 {
		t.Errorf("gamma_gamma row = %+v, want no parameters, no sample and a note", r)
	}
	for id, r := range readMemberMetrics(t, s) {
		if r.frequency == nil || *r.frequency != 0 || r.pAlive != nil || r.expectedPurchases != nil || r.clvPre != nil {
			t.Errorf("member %d: %+v, want frequency 0 and NULL model figures", id, r)
		}
	}
	snap, err := metrics.Latest(ctx, s.db, &asOf)
	if err != nil {
		t.Fatal(err)
	}
	for _, seg := range snap.Segments {
		if seg.PAlive != nil || seg.ExpectedPurchases != nil || seg.CLVPredicted != nil || seg.ExpectedChurned != nil {
			t.Errorf("%s: model figures %+v, want NULL", seg.Segment, seg)
		}
		if seg.Segment == "all" && seg.Customers != 5 {
			t.Errorf("all: customers = %d, want 5 (the historic figures are still computed)", seg.Customers)
		}
	}
}

func checkClose(t *testing.T, name string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %.12g, want %.12g", name, got, want)
	}
}

func deref64(p *float64) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprint(*p)
}

// TestBackfillKeepsNewerMemberMetrics checks that a run for an older date does not replace the
// per-member figures of a newer one, while its own snapshot still gets its segment figures.
func TestBackfillKeepsNewerMemberMetrics(t *testing.T) {
	s := newShop(t, "oslo-1")
	m := s.member("oslo-1", "2025-01-01T12:00:00+01:00", "active")
	s.txn(m, "sale", "2025-06-10T12:00:00+02:00", 1000)
	s.txn(m, "sale", "2026-02-10T12:00:00+01:00", 1000)
	ctx := context.Background()
	newer, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)})
	if err != nil {
		t.Fatal(err)
	}
	older := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	if _, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: older, Timezone: oslo(t)}); err != nil {
		t.Fatal(err)
	}
	var runID int64
	var frequency int
	if err := s.db.Pool.QueryRow(ctx, `SELECT run_id, frequency FROM member_metrics WHERE member_id = $1`, m).
		Scan(&runID, &frequency); err != nil {
		t.Fatal(err)
	}
	if runID != newer || frequency != 1 {
		t.Errorf("member_metrics from run %d with frequency %d, want run %d (as of %s) with frequency 1",
			runID, frequency, newer, asOf.Format(time.DateOnly))
	}
	snap, err := metrics.Latest(ctx, s.db, &older)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Segments[0].Customers != 1 {
		t.Errorf("older snapshot: customers = %d, want 1", snap.Segments[0].Customers)
	}
}

// TestFitsStartFromThePreviousRun: a run starts each fit from the latest converged fit's
// parameters and records the same maximum, within the fit's tolerance, as a run with no
// previous fit; a previous fit far from the maximum costs steps, not the answer.
func TestFitsStartFromThePreviousRun(t *testing.T) {
	s := simulatedShop(t)
	ctx := context.Background()
	params := func(runID int64) (bg, gg map[string]float64) {
		t.Helper()
		models := readModels(t, s, runID)
		if !models["bgnbd"].converged || !models["gamma_gamma"].converged {
			t.Fatalf("run %d: fits did not converge: %+v", runID, models)
		}
		if err := json.Unmarshal(models["bgnbd"].params, &bg); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(models["gamma_gamma"].params, &gg); err != nil {
			t.Fatal(err)
		}
		return bg, gg
	}
	cold, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)})
	if err != nil {
		t.Fatal(err)
	}
	coldBG, coldGG := params(cold)
	same := func(run int64) {
		t.Helper()
		bg, gg := params(run)
		for name, want := range coldBG {
			if got := bg[name]; math.Abs(got-want) > 1e-4*math.Abs(want) {
				t.Errorf("run %d: BG/NBD %s = %v, from the default start %v", run, name, got, want)
			}
		}
		for name, want := range coldGG {
			if got := gg[name]; math.Abs(got-want) > 1e-4*math.Abs(want) {
				t.Errorf("run %d: Gamma-Gamma %s = %v, from the default start %v", run, name, got, want)
			}
		}
	}
	warm, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)})
	if err != nil {
		t.Fatal(err)
	}
	same(warm)
	// The latest converged fits become far-off ones (a later run's, say).
	if _, err := s.db.Pool.Exec(ctx, `
		UPDATE metric_models SET params = CASE model
		    WHEN 'bgnbd' THEN '{"r": 40, "alpha": 0.5, "a": 30, "b": 0.01}'::jsonb
		    ELSE '{"p": 0.05, "q": 900, "gamma": 1e6}'::jsonb END
		WHERE run_id = $1`, warm); err != nil {
		t.Fatal(err)
	}
	far, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)})
	if err != nil {
		t.Fatal(err)
	}
	same(far)
}
