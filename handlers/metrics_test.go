package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

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

func ptr(v float64) *float64 { return &v }
