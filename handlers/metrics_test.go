package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regulars/regulars/jobs/metrics"
	"github.com/regulars/regulars/models"
)

// metricsLockKey is jobs/metrics' advisory lock key; holding it stands in for a run in progress.
const metricsLockKey = metrics.LockKey

// seedMetrics enrols two members at oslo-1 and one at bergen-1 and records their purchases in
// October 2026: the oslo pair buy three times between them, the bergen member once.
func seedMetrics(t *testing.T, tl *till) {
	t.Helper()
	ctx := context.Background()
	no := false
	for _, m := range []struct {
		token string
		store string
		sales []string // occurred_at of each sale
	}{
		{tl.oslo, "oslo-1", []string{"2026-10-01T12:00:00+02:00", "2026-10-15T12:00:00+02:00"}},
		{tl.oslo, "oslo-1", []string{"2026-10-20T12:00:00+02:00"}},
		{tl.bergen, "bergen-1", []string{"2026-10-21T12:00:00+02:00"}},
	} {
		p, err := tl.db.Authenticate(ctx, m.token)
		if err != nil {
			t.Fatal(err)
		}
		mem, err := tl.db.CreateMember(ctx, p, models.MemberInput{Name: "Kari", MarketingConsent: &no}, models.ConsentEvidence{Source: "till"})
		if err != nil {
			t.Fatalf("create member: %v", err)
		}
		for i, at := range m.sales {
			in := models.TransactionInput{ID: fmt.Sprintf("S-%d-%d", mem.ID, i), Store: m.store, Kind: "sale",
				OccurredAt: at, Amount: models.Int{Value: 10000, Present: true}, Currency: "NOK",
				Member: &models.MemberRef{Card: mem.Card}}
			if _, _, err := tl.db.RecordTransaction(ctx, p, in); err != nil {
				t.Fatalf("record sale: %v", err)
			}
		}
	}
}

// snapshot is the body of GET /metrics/segments, figures as pointers so that null shows.
type snapshot struct {
	Run      metricsRunView           `json:"run"`
	Segments []metrics.SegmentMetrics `json:"segments"`
}

func (s snapshot) segment(t *testing.T, name string) metrics.SegmentMetrics {
	t.Helper()
	for _, m := range s.Segments {
		if m.Segment == name {
			return m
		}
	}
	t.Fatalf("no segment %q in %+v", name, s.Segments)
	return metrics.SegmentMetrics{}
}

func TestMetricsAPI(t *testing.T) {
	tl := newTill(t)
	seedMetrics(t, tl)

	t.Run("segments before any run are not found", func(t *testing.T) {
		wantError(t, tl.do(t, http.MethodGet, "/api/v1/metrics/segments", tl.marketer, nil), 404, "")
	})

	t.Run("models before any run are not found", func(t *testing.T) {
		wantError(t, tl.do(t, http.MethodGet, "/api/v1/metrics/model", tl.marketer, nil), 404, "")
	})

	t.Run("an admin runs the metrics as of a date", func(t *testing.T) {
		res := tl.do(t, http.MethodPost, "/api/v1/metrics/run", tl.admin, map[string]any{"as_of": "2026-11-01"})
		if res.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		if body := res.JSON(t); body["as_of"] != "2026-11-01" {
			t.Errorf("as_of %v, want 2026-11-01", body["as_of"])
		}
	})

	t.Run("a marketer reads the snapshot with the seeded customers", func(t *testing.T) {
		res := tl.do(t, http.MethodGet, "/api/v1/metrics/segments?as_of=2026-11-01", tl.marketer, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		var s snapshot
		if err := json.Unmarshal(res.Body, &s); err != nil {
			t.Fatal(err)
		}
		if s.Run.AsOf != "2026-11-01" || s.Run.WindowDays != 365 || s.Run.ChurnDays != 90 {
			t.Errorf("run %+v, want as of 2026-11-01 with the default window and churn period", s.Run)
		}
		for _, want := range []struct {
			segment              string
			members, customers   int64
			orders, net, repeats int64
		}{
			{"all", 3, 3, 4, 40000, 1},
			{"store:oslo-1", 2, 2, 3, 30000, 1},
			{"store:bergen-1", 1, 1, 1, 10000, 0},
		} {
			got := s.segment(t, want.segment)
			if got.Members != want.members || got.Customers != want.customers || got.Orders != want.orders || got.NetRevenue != want.net {
				t.Errorf("%s: members %d customers %d orders %d net %d, want %d %d %d %d", want.segment,
					got.Members, got.Customers, got.Orders, got.NetRevenue, want.members, want.customers, want.orders, want.net)
			}
			if got.AOV == nil || *got.AOV != 10000 {
				t.Errorf("%s: aov %v, want 10000", want.segment, got.AOV)
			}
			if got.RepeatPurchaseRate == nil || *got.RepeatPurchaseRate != float64(want.repeats)/float64(want.customers) {
				t.Errorf("%s: repeat_purchase_rate %v, want %d/%d", want.segment, got.RepeatPurchaseRate, want.repeats, want.customers)
			}
		}
	})

	t.Run("the models of a tiny shop are reported as not used, with a note", func(t *testing.T) {
		res := tl.do(t, http.MethodGet, "/api/v1/metrics/model?as_of=2026-11-01", tl.marketer, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		var body modelsView
		if err := json.Unmarshal(res.Body, &body); err != nil {
			t.Fatal(err)
		}
		if body.Run.AsOf != "2026-11-01" || body.HorizonDays == nil || *body.HorizonDays != 365 ||
			body.MonthlyDiscountRate == nil || *body.MonthlyDiscountRate != 0.01 {
			t.Errorf("run %+v horizon %v rate %v, want as of 2026-11-01 with the default settings", body.Run, body.HorizonDays, body.MonthlyDiscountRate)
		}
		fits := map[string]metrics.ModelFit{}
		for _, m := range body.Models {
			fits[m.Model] = m
		}
		if len(fits) != 2 {
			t.Fatalf("models %s, want bgnbd and gamma_gamma", res.Body)
		}
		// Three customers, one of whom came back once: too little to fit either model.
		for name, m := range fits {
			if m.Converged || m.Note == "" {
				t.Errorf("%s: converged %t note %q, want a fit that was not used and says why", name, m.Converged, m.Note)
			}
		}
		if n := fits["bgnbd"].SampleSize; n != 3 {
			t.Errorf("bgnbd sample size %d, want the 3 customers", n)
		}
	})

	t.Run("an undefined figure is JSON null", func(t *testing.T) {
		// Nobody bought in the churn base [A−180d, A−90d), so churn_rate has no denominator.
		res := tl.do(t, http.MethodGet, "/api/v1/metrics/segments", tl.admin, nil)
		var body struct {
			Segments []map[string]json.RawMessage `json:"segments"`
		}
		if err := json.Unmarshal(res.Body, &body); err != nil || len(body.Segments) == 0 {
			t.Fatalf("body %s: %v", res.Body, err)
		}
		if got := string(body.Segments[0]["churn_rate"]); got != "null" {
			t.Errorf("churn_rate of %s is %s, want null", body.Segments[0]["segment"], got)
		}
	})

	t.Run("a run without a body is as of today", func(t *testing.T) {
		res := tl.do(t, http.MethodPost, "/api/v1/metrics/run", tl.admin, nil)
		if res.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		if got, want := res.JSON(t)["as_of"], tl.db.Now().UTC().Format(time.DateOnly); got != want {
			t.Errorf("as_of %v, want %s", got, want)
		}
	})

	t.Run("a series gives a point per run date", func(t *testing.T) {
		if res := tl.do(t, http.MethodPost, "/api/v1/metrics/run", tl.admin, map[string]any{"as_of": "2026-10-16"}); res.Status != 201 {
			t.Fatalf("run: %d %s", res.Status, res.Body)
		}
		res := tl.do(t, http.MethodGet, "/api/v1/metrics/series?segment=store:oslo-1&metric=customers&from=2026-10-01&to=2026-11-01", tl.marketer, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		var body struct{ Points []pointView }
		if err := json.Unmarshal(res.Body, &body); err != nil {
			t.Fatal(err)
		}
		// On 16 October only the first oslo member had bought (on the 1st and the 15th).
		want := []pointView{{"2026-10-16", ptr(1.0)}, {"2026-11-01", ptr(2.0)}}
		if len(body.Points) != len(want) {
			t.Fatalf("points %s, want %v", res.Body, want)
		}
		for i, p := range body.Points {
			if p.AsOf != want[i].AsOf || p.Value == nil || *p.Value != *want[i].Value {
				t.Errorf("point %d: %s %v, want %s %v", i, p.AsOf, p.Value, want[i].AsOf, *want[i].Value)
			}
		}
	})

	t.Run("a run while another is in progress is a conflict", func(t *testing.T) {
		ctx := context.Background()
		conn, err := tl.db.Pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, metricsLockKey); err != nil {
			t.Fatal(err)
		}
		defer conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, metricsLockKey) //nolint:errcheck
		wantError(t, tl.do(t, http.MethodPost, "/api/v1/metrics/run", tl.admin, nil), 409, "")
	})

	cases := []struct {
		name   string
		method string
		path   string
		token  func() string
		body   any
		status int
		field  string
	}{
		{"a register may not read metrics", "GET", "/api/v1/metrics/segments", func() string { return tl.oslo }, nil, 403, ""},
		{"a register may not read the models", "GET", "/api/v1/metrics/model", func() string { return tl.oslo }, nil, 403, ""},
		{"a bad as_of for the models is invalid", "GET", "/api/v1/metrics/model?as_of=01.11.2026", func() string { return tl.marketer }, nil, 422, "as_of"},
		{"models of a date with no run are not found", "GET", "/api/v1/metrics/model?as_of=2020-01-01", func() string { return tl.marketer }, nil, 404, ""},
		{"a register may not read a series", "GET", "/api/v1/metrics/series?metric=aov", func() string { return tl.oslo }, nil, 403, ""},
		{"a marketer may not start a run", "POST", "/api/v1/metrics/run", func() string { return tl.marketer }, nil, 403, ""},
		{"no token is unauthorized", "GET", "/api/v1/metrics/segments", func() string { return "" }, nil, 401, ""},
		{"a bad as_of in a query is invalid", "GET", "/api/v1/metrics/segments?as_of=2026-13-01", func() string { return tl.marketer }, nil, 422, "as_of"},
		{"a bad as_of in a run is invalid", "POST", "/api/v1/metrics/run", func() string { return tl.admin }, map[string]any{"as_of": "yesterday"}, 422, "as_of"},
		{"as_of as a number is invalid", "POST", "/api/v1/metrics/run", func() string { return tl.admin }, map[string]any{"as_of": 20261101}, 422, "as_of"},
		{"a date with no run is not found", "GET", "/api/v1/metrics/segments?as_of=2020-01-01", func() string { return tl.marketer }, nil, 404, ""},
		{"a series without a metric is invalid", "GET", "/api/v1/metrics/series", func() string { return tl.marketer }, nil, 422, "metric"},
		{"a series of an unknown metric is invalid", "GET", "/api/v1/metrics/series?metric=happiness", func() string { return tl.marketer }, nil, 422, "metric"},
		{"a series that ends before it starts is invalid", "GET", "/api/v1/metrics/series?metric=aov&from=2026-11-01&to=2026-10-01", func() string { return tl.marketer }, nil, 422, "from"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tl.do(t, tc.method, tc.path, tc.token(), tc.body), tc.status, tc.field)
		})
	}
}

// seedSimulation enrols 400 members at oslo-1 and bergen-1 and draws their purchases before
// 1 April 2026 from a BG/NBD-like process (Gamma-distributed daily rates, drop-out after each
// purchase with probability 0.3, log-normal amounts), with a fixed seed: the history
// jobs/metrics' model test fits, enough for both models to converge.
func seedSimulation(t *testing.T, tl *till) {
	t.Helper()
	ctx := context.Background()
	var oslo, bergen int64
	if err := tl.db.Pool.QueryRow(ctx, `SELECT (SELECT id FROM stores WHERE code = 'oslo-1'), (SELECT id FROM stores WHERE code = 'bergen-1')`).Scan(&oslo, &bergen); err != nil {
		t.Fatal(err)
	}
	rows, err := tl.db.Pool.Query(ctx, `
		INSERT INTO members (card, name, home_store_id, status, source, joined_at)
		SELECT '9' || lpad(g::text, 12, '0'), 'Sim ' || g, CASE WHEN g % 2 = 0 THEN $1::bigint ELSE $2::bigint END,
		       'active', 'test', '2024-01-01T00:00:00Z'
		FROM generate_series(1, 400) g RETURNING id`, oslo, bergen)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 7))
	a := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	var txns [][]any
	for _, id := range ids {
		rate := (rng.ExpFloat64() + rng.ExpFloat64()) / 60 // a purchase every 30 days on average
		at := a.Add(-time.Duration(1+rng.IntN(700*24)) * time.Hour)
		for at.Before(a) {
			amount := int64(math.Round(30000 * math.Exp(0.5*rng.NormFloat64())))
			txns = append(txns, []any{oslo, fmt.Sprintf("S-%d", len(txns)), "sale", at, max(amount, 1), "NOK", id, []byte{0}})
			if rng.Float64() < 0.3 {
				break
			}
			at = at.Add(time.Duration(rng.ExpFloat64() / rate * 24 * float64(time.Hour)))
		}
	}
	if _, err := tl.db.Pool.CopyFrom(ctx, pgx.Identifier{"transactions"},
		[]string{"store_id", "txn_id", "kind", "occurred_at", "amount_minor", "currency", "member_id", "content_hash"},
		pgx.CopyFromRows(txns)); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsModelAPI(t *testing.T) {
	tl := newTill(t)
	seedSimulation(t, tl)
	if res := tl.do(t, http.MethodPost, "/api/v1/metrics/run", tl.admin, map[string]any{"as_of": "2026-04-01"}); res.Status != http.StatusCreated {
		t.Fatalf("run: %d %s", res.Status, res.Body)
	}

	for _, path := range []string{"/api/v1/metrics/model", "/api/v1/metrics/model?as_of=2026-04-01"} {
		t.Run("a marketer reads converged fits at "+path, func(t *testing.T) {
			res := tl.do(t, http.MethodGet, path, tl.marketer, nil)
			if res.Status != http.StatusOK {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			t.Logf("%s", res.Body)
			var body modelsView
			if err := json.Unmarshal(res.Body, &body); err != nil {
				t.Fatal(err)
			}
			if body.Run.AsOf != "2026-04-01" {
				t.Errorf("run as of %s, want 2026-04-01", body.Run.AsOf)
			}
			want := map[string][]string{"bgnbd": {"r", "alpha", "a", "b"}, "gamma_gamma": {"p", "q", "gamma"}}
			if len(body.Models) != len(want) {
				t.Fatalf("models %s, want one each of bgnbd and gamma_gamma", res.Body)
			}
			for _, m := range body.Models {
				if !m.Converged || m.Note != "" || m.LogLikelihood == nil || *m.LogLikelihood >= 0 || m.SampleSize == 0 || m.Groups == 0 {
					t.Errorf("%s: %s, want a converged fit with a negative log-likelihood and a sample", m.Model, res.Body)
				}
				for _, k := range want[m.Model] {
					if v, ok := m.Params[k]; !ok || !(v > 0) {
						t.Errorf("%s: parameter %s = %v, want a positive number", m.Model, k, v)
					}
				}
				if len(m.Params) != len(want[m.Model]) {
					t.Errorf("%s: parameters %v, want exactly %v", m.Model, m.Params, want[m.Model])
				}
			}
			// Every simulated member bought at least once before 1 April.
			if body.Models[0].Model != "bgnbd" || body.Models[0].SampleSize != 400 {
				t.Errorf("first model %s with sample %d, want bgnbd fitted on the 400 members", body.Models[0].Model, body.Models[0].SampleSize)
			}
		})
	}
}

func ptr(v float64) *float64 { return &v }
