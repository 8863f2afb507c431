package metrics_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/jobs/metrics"
)

func TestRFMSegmentNamesEveryScore(t *testing.T) {
	names := map[string]bool{}
	for _, n := range metrics.RFMSegmentNames {
		names[n] = true
	}
	if len(names) != 8 {
		t.Fatalf("RFMSegmentNames = %q, want eight distinct names", metrics.RFMSegmentNames)
	}
	used := map[string]bool{}
	for r := 1; r <= 5; r++ {
		for f := 1; f <= 5; f++ {
			for m := 1; m <= 5; m++ {
				got := metrics.RFMSegment(r, f, m)
				if !names[got] {
					t.Errorf("RFMSegment(%d, %d, %d) = %q, want one of the eight names", r, f, m, got)
				}
				used[got] = true
			}
		}
	}
	t.Run("every name is reachable", func(t *testing.T) {
		for n := range names {
			if !used[n] {
				t.Errorf("no score gives %q", n)
			}
		}
	})
	t.Run("scores out of range have no name", func(t *testing.T) {
		for _, s := range [][3]int{{0, 1, 1}, {1, 6, 1}, {1, 1, 0}} {
			if got := metrics.RFMSegment(s[0], s[1], s[2]); got != "" {
				t.Errorf("RFMSegment%v = %q, want \"\"", s, got)
			}
		}
	})
	// A few cells of the table in docs/metrics.md.
	for _, tt := range []struct {
		r, f int
		want string
	}{
		{5, 5, "Champions"}, {4, 4, "Loyal"}, {3, 5, "Loyal"}, {5, 2, "Potential loyalists"},
		{3, 3, "Potential loyalists"}, {5, 1, "New"}, {4, 1, "New"}, {2, 3, "At risk"},
		{1, 5, "Can't lose"}, {2, 1, "Hibernating"}, {3, 2, "Hibernating"}, {1, 2, "Lost"},
	} {
		t.Run("R"+string(rune('0'+tt.r))+"F"+string(rune('0'+tt.f))+" is "+tt.want, func(t *testing.T) {
			for m := 1; m <= 5; m++ {
				if got := metrics.RFMSegment(tt.r, tt.f, m); got != tt.want {
					t.Errorf("RFMSegment(%d, %d, %d) = %q, want %q", tt.r, tt.f, m, got, tt.want)
				}
			}
		})
	}
}

// rfmRow is a member's RFM columns in member_metrics; scores 0 stand for NULL.
type rfmRow struct {
	r, f, m int
	segment string
}

func readRFM(t *testing.T, s *shop) map[int64]rfmRow {
	t.Helper()
	rows, err := s.db.Pool.Query(context.Background(), `
		SELECT member_id, coalesce(recency_score, 0), coalesce(frequency_score, 0),
		       coalesce(monetary_score, 0), coalesce(rfm_segment, '')
		FROM member_metrics`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]rfmRow{}
	for rows.Next() {
		var id int64
		var r rfmRow
		if err := rows.Scan(&id, &r.r, &r.f, &r.m, &r.segment); err != nil {
			t.Fatal(err)
		}
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRFMWorkedExample scores the worked example of metrics_test.go (docs/metrics.md, "RFM"),
// A = 2026-04-01 Europe/Oslo, window [2025-04-01, 2026-04-01). Seven members bought in the
// window, so ntile(5) makes buckets of 2, 2, 1, 1, 1 in the order worst to best (member id
// breaks ties in the order; equal values then share the lowest bucket among them).
//
//	member  last sale (Oslo)  days  sales  net     R  F  M  segment
//	M1      2026-02-10        50    2      25000   4  2  5  Potential loyalists
//	M2      2026-03-31        1     2      12000   5  2  4  Potential loyalists
//	M3      2025-12-20        102   1      6000    2  1  2  Hibernating
//	M4      2026-01-01        90    2      5000    3  2  2  Hibernating
//	M5      2025-12-31        91    2      8000    2  2  3  Hibernating
//	M6      2025-07-01        274   1      −6000   1  1  1  Lost
//	M7      – (bought after A only)                       NULL
//	M8      2025-09-01        212   1      4000    1  1  1  Lost
//	M9      2025-03-31 (before the window)                Lost, no scores
//
// Recency, most days first: M6 M8 | M3 M5 | M4 | M1 | M2. Frequency, fewest first:
// M3 M6 | M8 M1 | M2 | M4 | M5, and the tie rule gives all three one-purchase members 1 and all
// four two-purchase members 2. Monetary, least first: M6 M8 | M4 M3 | M5 | M2 | M1.
func TestRFMWorkedExample(t *testing.T) {
	s := example(t)
	ctx := context.Background()
	if _, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)}); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	rows, err := s.db.Pool.Query(ctx, `SELECT id FROM members ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Err() != nil || len(ids) != 9 {
		t.Fatalf("members = %v (%v), want nine", ids, rows.Err())
	}
	want := []rfmRow{
		{4, 2, 5, "Potential loyalists"},
		{5, 2, 4, "Potential loyalists"},
		{2, 1, 2, "Hibernating"},
		{3, 2, 2, "Hibernating"},
		{2, 2, 3, "Hibernating"},
		{1, 1, 1, "Lost"},
		{0, 0, 0, ""},
		{1, 1, 1, "Lost"},
		{0, 0, 0, "Lost"},
	}
	got := readRFM(t, s)
	for i, w := range want {
		if g := got[ids[i]]; g != w {
			t.Errorf("M%d: scores and segment = %+v, want %+v", i+1, g, w)
		}
	}

	t.Run("every rfm segment is reported with its members", func(t *testing.T) {
		snap, err := metrics.Latest(ctx, s.db, &asOf)
		if err != nil {
			t.Fatal(err)
		}
		// Customers: members with a purchase in the window (M9, Lost, has none).
		wantCounts := map[string][2]int64{
			"rfm:Champions": {0, 0}, "rfm:Loyal": {0, 0}, "rfm:Potential loyalists": {2, 2}, "rfm:New": {0, 0},
			"rfm:At risk": {0, 0}, "rfm:Can't lose": {0, 0}, "rfm:Hibernating": {3, 3}, "rfm:Lost": {3, 2},
		}
		seen := 0
		for _, seg := range snap.Segments {
			w, ok := wantCounts[seg.Segment]
			if !ok {
				continue
			}
			seen++
			checkCount(t, seg.Segment+" members", seg.Members, w[0])
			checkCount(t, seg.Segment+" customers", seg.Customers, w[1])
		}
		if seen != len(wantCounts) {
			t.Errorf("%d rfm segments reported, want %d", seen, len(wantCounts))
		}
	})

	t.Run("segment rules select members by rfm_segment", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			rule    segments.Node
			members []int // 1-based, as in the table above
		}{
			{"eq picks one segment", segments.Node{Field: "rfm_segment", Op: segments.Eq, Value: "Hibernating"}, []int{3, 4, 5}},
			{"in picks several", segments.Node{Field: "rfm_segment", Op: segments.In, Value: []string{"Lost", "Potential loyalists"}}, []int{1, 2, 6, 8, 9}},
			{"ne leaves out members without a segment", segments.Node{Field: "rfm_segment", Op: segments.Ne, Value: "Lost"}, []int{1, 2, 3, 4, 5}},
			{"not_in leaves out members without a segment", segments.Node{Field: "rfm_segment", Op: segments.NotIn, Value: []string{"Lost", "Hibernating"}}, []int{1, 2}},
			{"is_null finds members who never bought", segments.Node{Field: "rfm_segment", Op: segments.IsNull}, []int{7}},
			{"an empty segment selects nobody", segments.Node{Field: "rfm_segment", Op: segments.Eq, Value: "Can't lose"}, nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				sample, err := segments.Sample(ctx, s.db, &tt.rule, asOf, segments.MaxSample)
				if err != nil {
					t.Fatal(err)
				}
				var got, want []int64
				for _, m := range sample {
					got = append(got, m.ID)
				}
				for _, i := range tt.members {
					want = append(want, ids[i-1])
				}
				if !slices.Equal(got, want) {
					t.Errorf("members = %v, want %v", got, want)
				}
			})
		}
	})

	t.Run("an unknown segment name is rejected", func(t *testing.T) {
		err := segments.Validate(&segments.Node{Field: "rfm_segment", Op: segments.Eq, Value: "Whales"})
		if err == nil {
			t.Error("rfm_segment eq Whales validated")
		}
	})

	t.Run("a back-filled run keeps the newer scores", func(t *testing.T) {
		older := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
		if _, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: older, Timezone: oslo(t)}); err != nil {
			t.Fatal(err)
		}
		after := readRFM(t, s)
		for i, w := range want {
			if g := after[ids[i]]; g != w {
				t.Errorf("M%d after the back-fill: %+v, want %+v", i+1, g, w)
			}
		}
	})
}

// TestRFMTiesShareAScore checks the tie rule on recency: members who last bought on the same day
// get the same score whatever their ids, the lowest bucket any of them landed in.
func TestRFMTiesShareAScore(t *testing.T) {
	s := newShop(t, "oslo-1")
	// Five members: four last bought on 2026-03-01 (31 days before A), one on 2026-03-31.
	// Worst first: the four tied (buckets 1, 2, 3, 4 by id) then the recent one (5). The tie
	// rule gives the four R = 1; the recent one R = 5. Each bought once: F = 1 for all. So
	// the four are Lost (R1 F1) and the recent one New (R5 F1).
	var ids []int64
	for i := range 5 {
		id := s.member("oslo-1", "2025-01-01T12:00:00+01:00", "active")
		ids = append(ids, id)
		day := "2026-03-01T12:00:00+01:00"
		if i == 2 {
			day = "2026-03-31T12:00:00+02:00"
		}
		s.txn(id, "sale", day, int64(1000*(i+1)))
	}
	if _, err := metrics.Compute(context.Background(), s.db, metrics.Options{AsOf: asOf, Timezone: oslo(t)}); err != nil {
		t.Fatal(err)
	}
	got := readRFM(t, s)
	// Monetary 1000…5000 in id order, no ties: scores 1…5.
	want := []rfmRow{{1, 1, 1, "Lost"}, {1, 1, 2, "Lost"}, {5, 1, 3, "New"}, {1, 1, 4, "Lost"}, {1, 1, 5, "Lost"}}
	for i, w := range want {
		if g := got[ids[i]]; g != w {
			t.Errorf("member %d: %+v, want %+v", i+1, g, w)
		}
	}
}
