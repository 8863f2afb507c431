// Command benchcatalogue times what issue 16 measures at scale, for scripts/bench-metrics.sh
// (CATALOGUE=1): the count of a segment with one bought_category rule (segments.Count, the
// compiled SQL a saved segment's count and a campaign's audience use) beside a hand-written SQL
// query of the same set, in interleaved rounds on the same connection pool, and checks that
// both count the same members. With -explain it writes EXPLAIN (ANALYZE, BUFFERS) of both.
//
// With -revenue-from and -revenue-to it also times models.Revenue (GET /metrics/revenue, every
// store) over that range beside a plain GROUP BY of the same transactions by store and UTC month
// (a ceiling: no zones, no empty months), and with -lines the per-member aggregation of the
// receipt lines that the metrics run adds for units and margins (jobs/metrics, per_member_lines)
// beside its per-member aggregation of the transactions (per_member), over the same window.
//
//	benchcatalogue -url postgres://... -as-of 2026-01-01 -tz Europe/Oslo -category "Category 01" -rounds 3 \
//	    -revenue-from 2025-01-01 -revenue-to 2026-01-01 -lines
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models"
)

// handSQL is the hand-written count of the members who bought a product of category $1 on a
// sale in [$2, $3) that no refund naming it (in its store, before $3) took back: what the
// bought_category rule means (campaigns/segments/fields.go), written from the catalogue out.
const handSQL = `
SELECT count(DISTINCT t.member_id)
FROM products p
JOIN transaction_items i ON i.sku = p.sku
JOIN transactions t ON t.id = i.transaction_id
WHERE lower(p.category) = lower($1)
  AND t.kind = 'sale' AND t.member_id IS NOT NULL AND t.occurred_at >= $2 AND t.occurred_at < $3
  AND NOT EXISTS (SELECT 1 FROM transactions r
                  WHERE r.store_id = t.store_id AND r.refunds_txn_id = t.txn_id AND r.kind = 'refund'
                    AND r.occurred_at < $3)`

// revenueCeilingSQL is the ceiling of the revenue report: the same transactions ($1, $2 dates)
// summed by store and UTC month, nothing else.
const revenueCeilingSQL = `
SELECT t.store_id, date_trunc('month', t.occurred_at), sum(net_amount(t.kind, t.amount_minor)),
       sum(net_amount(t.kind, t.amount_minor)) FILTER (WHERE t.member_id IS NOT NULL),
       count(*) FILTER (WHERE t.kind = 'sale' AND t.member_id IS NOT NULL),
       count(*) FILTER (WHERE t.kind = 'sale' AND t.member_id IS NULL)
FROM transactions t
WHERE t.occurred_at >= $1::date::timestamptz AND t.occurred_at < $2::date::timestamptz
GROUP BY 1, 2`

// perMemberTxnsSQL and perMemberLinesSQL are the two per-member aggregations of a metrics run
// over the window [$1, $2), as jobs/metrics writes them (segmentMetricsSQL's per_member and
// per_member_lines), counted rather than joined to the segments.
const perMemberTxnsSQL = `
SELECT count(*), sum(orders), sum(net) FROM (
    SELECT t.member_id, count(*) FILTER (WHERE t.kind = 'sale') AS orders,
           sum(net_amount(t.kind, t.amount_minor)) AS net
    FROM transactions t
    WHERE t.member_id IS NOT NULL AND t.occurred_at >= $1 AND t.occurred_at < $2
    GROUP BY t.member_id) pm`

var perMemberLinesSQL = `
SELECT count(*), sum(units), sum(gross_margin) FROM (
    SELECT t.member_id,
           sum(CASE WHEN t.kind = 'sale' THEN i.qty ELSE -i.qty END) AS units,
           count(DISTINCT t.id) FILTER (WHERE t.kind = 'sale') AS itemised_orders,
           ` + models.LineMarginSQL + `
    FROM transactions t
    JOIN transaction_items i ON i.transaction_id = t.id
    LEFT JOIN products p ON p.sku = i.sku
    WHERE t.member_id IS NOT NULL AND t.occurred_at >= $1 AND t.occurred_at < $2
    GROUP BY t.member_id) pl`

// round is one round's times in seconds.
type round struct {
	Round          int     `json:"round"`
	Segment        float64 `json:"segment_count_s"`
	Hand           float64 `json:"hand_query_s"`
	Revenue        float64 `json:"revenue_s,omitempty"`
	RevenueCeiling float64 `json:"revenue_ceiling_s,omitempty"`
	PerMember      float64 `json:"per_member_txns_s,omitempty"`
	PerMemberLines float64 `json:"per_member_lines_s,omitempty"`
}

// extra are the optional timings.
var extra struct {
	revenueFrom, revenueTo string
	lines                  bool
}

func main() {
	url := flag.String("url", "", "database URL")
	asOf := flag.String("as-of", "2026-01-01", "as-of date")
	tzName := flag.String("tz", "UTC", "time zone (REGULARS_TIMEZONE)")
	category := flag.String("category", "Category 01", "the bought_category value")
	rounds := flag.Int("rounds", 3, "interleaved rounds")
	explain := flag.String("explain", "", "directory to write EXPLAIN (ANALYZE, BUFFERS) of both queries into")
	flag.StringVar(&extra.revenueFrom, "revenue-from", "", "also time models.Revenue from this date (YYYY-MM-DD)")
	flag.StringVar(&extra.revenueTo, "revenue-to", "", "... to this date (exclusive)")
	flag.BoolVar(&extra.lines, "lines", false, "also time the metrics run's per-member aggregation of receipt lines")
	flag.Parse()
	if err := run(context.Background(), *url, *asOf, *tzName, *category, *rounds, *explain); err != nil {
		fmt.Fprintln(os.Stderr, "benchcatalogue:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url, asOfText, tzName, category string, rounds int, explainDir string) error {
	tz, err := time.LoadLocation(tzName)
	if err != nil {
		return err
	}
	d, err := time.Parse(time.DateOnly, asOfText)
	if err != nil {
		return err
	}
	asOf := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, tz)
	from := asOf.AddDate(0, 0, -segments.DefaultWithinDays)
	db, err := models.Open(ctx, url, 2)
	if err != nil {
		return err
	}
	defer db.Close()
	tree := &segments.Node{Field: "bought_category", Op: segments.Eq, Value: category}

	var out struct {
		Category     string  `json:"category"`
		Members      int64   `json:"members"`
		Rounds       []round `json:"rounds"`
		SegmentBestS float64 `json:"segment_count_best_s"`
		HandBestS    float64 `json:"hand_query_best_s"`
		Ratio        float64 `json:"ratio_best"`
	}
	out.Category = category
	for r := 1; r <= rounds; r++ {
		start := time.Now()
		n, err := segments.Count(ctx, db, tree, asOf)
		if err != nil {
			return err
		}
		seg := time.Since(start)
		start = time.Now()
		var h int64
		if err := db.Pool.QueryRow(ctx, handSQL, category, from, asOf).Scan(&h); err != nil {
			return fmt.Errorf("hand-written query: %w", err)
		}
		hand := time.Since(start)
		if n != h {
			return fmt.Errorf("round %d: the segment counts %d members, the hand-written query %d", r, n, h)
		}
		out.Members = n
		rd := round{Round: r, Segment: secs(seg), Hand: secs(hand)}
		if err := timeExtras(ctx, db, &rd, from, asOf); err != nil {
			return err
		}
		out.Rounds = append(out.Rounds, rd)
	}
	best := func(get func(round) float64) float64 {
		vs := make([]float64, len(out.Rounds))
		for i, r := range out.Rounds {
			vs[i] = get(r)
		}
		return slices.Min(vs)
	}
	out.SegmentBestS = best(func(r round) float64 { return r.Segment })
	out.HandBestS = best(func(r round) float64 { return r.Hand })
	if out.HandBestS > 0 {
		out.Ratio = out.SegmentBestS / out.HandBestS
	}
	if explainDir != "" {
		if err := explainBoth(ctx, db, tree, asOf, category, from, explainDir); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// timeExtras times what -revenue-from/-revenue-to and -lines ask for, into rd.
func timeExtras(ctx context.Context, db *models.DB, rd *round, windowStart, asOf time.Time) error {
	timed := func(into *float64, fn func() error) error {
		start := time.Now()
		err := fn()
		*into = secs(time.Since(start))
		return err
	}
	count := func(sql string, args ...any) func() error {
		return func() error {
			rows, err := db.Pool.Query(ctx, sql, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
			}
			return rows.Err()
		}
	}
	if extra.revenueFrom != "" {
		from, err := time.Parse(time.DateOnly, extra.revenueFrom)
		if err != nil {
			return err
		}
		to, err := time.Parse(time.DateOnly, extra.revenueTo)
		if err != nil {
			return err
		}
		if err := timed(&rd.Revenue, func() error { _, err := db.Revenue(ctx, from, to, ""); return err }); err != nil {
			return fmt.Errorf("revenue: %w", err)
		}
		if err := timed(&rd.RevenueCeiling, count(revenueCeilingSQL, extra.revenueFrom, extra.revenueTo)); err != nil {
			return fmt.Errorf("revenue ceiling: %w", err)
		}
	}
	if extra.lines {
		if err := timed(&rd.PerMember, count(perMemberTxnsSQL, windowStart, asOf)); err != nil {
			return fmt.Errorf("per-member transactions: %w", err)
		}
		if err := timed(&rd.PerMemberLines, count(perMemberLinesSQL, windowStart, asOf)); err != nil {
			return fmt.Errorf("per-member lines: %w", err)
		}
	}
	return nil
}

// explainBoth writes the plans of the segment's count and of the hand-written query.
func explainBoth(ctx context.Context, db *models.DB, tree *segments.Node, asOf time.Time, category string, from time.Time, dir string) error {
	where, args, err := segments.Compile(tree, asOf, 0)
	if err != nil {
		return err
	}
	for _, q := range []struct {
		file, sql string
		args      []any
	}{
		{"segment-count.txt", "SELECT count(*) FROM members m WHERE " + where, args},
		{"hand-count.txt", handSQL, []any{category, from, asOf}},
	} {
		rows, err := db.Pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+q.sql, q.args...)
		if err != nil {
			return fmt.Errorf("explain %s: %w", q.file, err)
		}
		var plan []byte
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return err
			}
			plan = append(plan, line+"\n"...)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("explain %s: %w", q.file, err)
		}
		if err := os.WriteFile(filepath.Join(dir, q.file), plan, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func secs(d time.Duration) float64 { return float64(d.Round(time.Millisecond)) / float64(time.Second) }
