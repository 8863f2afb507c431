// Command benchcatalogue times what issue 16 measures at scale, for scripts/bench-metrics.sh
// (CATALOGUE=1): the count of a segment with one bought_category rule (segments.Count, the
// compiled SQL a saved segment's count and a campaign's audience use) beside a hand-written SQL
// query of the same set, in interleaved rounds on the same connection pool, and checks that
// both count the same members. With -explain it writes EXPLAIN (ANALYZE, BUFFERS) of both.
//
//	benchcatalogue -url postgres://... -as-of 2026-01-01 -tz Europe/Oslo -category "Category 01" -rounds 3
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

// round is one round's times in seconds.
type round struct {
	Round   int     `json:"round"`
	Segment float64 `json:"segment_count_s"`
	Hand    float64 `json:"hand_query_s"`
}

func main() {
	url := flag.String("url", "", "database URL")
	asOf := flag.String("as-of", "2026-01-01", "as-of date")
	tzName := flag.String("tz", "UTC", "time zone (REGULARS_TIMEZONE)")
	category := flag.String("category", "Category 01", "the bought_category value")
	rounds := flag.Int("rounds", 3, "interleaved rounds")
	explain := flag.String("explain", "", "directory to write EXPLAIN (ANALYZE, BUFFERS) of both queries into")
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
		out.Rounds = append(out.Rounds, round{Round: r, Segment: secs(seg), Hand: secs(hand)})
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
