package handlers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
	"github.com/regulars/regulars/models/demo"
)

// BenchmarkSegmentListWith200RuleSegment times GET /api/v1/segments on the demo shop (2,000
// members, two years of purchases) with a 200-rule segment (each rule a spend_365d subquery per
// member) and three small ones: the case that took 35 s a view when the list counted every
// segment. It also reports how long the background count of the 200-rule segment takes
// (count-s). Run: go test -run '^$' -bench SegmentListWith200Rule -benchtime 20x ./handlers/
func BenchmarkSegmentListWith200RuleSegment(b *testing.B) {
	ctx := context.Background()
	db := dbtest.New(b)
	if _, err := demo.Fill(ctx, db, demo.Options{}); err != nil {
		b.Fatal(err)
	}
	rules := make([]string, segments.MaxRules)
	for i := range rules {
		rules[i] = fmt.Sprintf(`{"field": "spend_365d", "op": "gt", "value": %d}`, 5_000_000+i)
	}
	var ids []int64
	for i, r := range []string{`{"any": [` + strings.Join(rules, ",") + `]}`,
		`{"field": "home_store", "op": "eq", "value": "oslo-1"}`,
		`{"field": "orders_365d", "op": "gte", "value": 3}`,
		`{"field": "status", "op": "eq", "value": "active"}`} {
		var id int64
		if err := db.Pool.QueryRow(ctx, `INSERT INTO segments (name, rules) VALUES ($1, $2) RETURNING id`,
			fmt.Sprintf("segment %d", i), r).Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	start := time.Now()
	if _, err := segments.Recount(ctx, db, ids[0], time.Time{}, true); err != nil {
		b.Fatal(err)
	}
	countTook := time.Since(start)
	for _, id := range ids[1:] {
		if _, err := segments.Recount(ctx, db, id, time.Time{}, true); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(mustNew(b, testConfig(db)))
	defer srv.Close()
	tok, err := db.CreateAPIKey(ctx, models.RoleMarketer, "", "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/segments", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	b.ReportMetric(countTook.Seconds(), "count-s")
}
