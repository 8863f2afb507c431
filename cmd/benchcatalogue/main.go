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
// With -categories it also times GET /metrics/categories (segments.Categories) for each segment
// key it lists ("all", "store:store-01", …; "bought" is a saved segment with the -category rule,
// created once), beside a plain GROUP BY category of the same segment's lines in the window (a
// ceiling: no refund check, no per-sale and per-buyer sums). Each of these statements runs under
// -limit, so a slow report is cut there and reported as such (the server cuts a request at 30 s),
// never left running; its EXPLAIN (ANALYZE, BUFFERS) runs under the same limit.
//
//	benchcatalogue -url postgres://... -as-of 2026-01-01 -tz Europe/Oslo -category "Category 01" -rounds 3 \
//	    -revenue-from 2025-01-01 -revenue-to 2026-01-01 -lines -categories all,store:store-01,bought
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models"
)

// handSQL is the hand-written count of the members who bought a product of category $1 on a
// sale in [$2, $3) that no refund naming it (in its store, before $3) took back: what the
// bought_category rule means (campaigns/segments/fields.go), written from the catalogue out, on
// the lines' copies of their sale's member, time and kind and the refunds' refunds_id (the
// sale's row id; by the till's ids where it is NULL), migration 00028.
const handSQL = `
SELECT count(DISTINCT i.member_id)
FROM products p
JOIN transaction_items i ON i.sku = p.sku
WHERE lower(p.category) = lower($1)
  AND i.kind = 'sale' AND i.member_id IS NOT NULL AND i.occurred_at >= $2 AND i.occurred_at < $3
  AND NOT EXISTS (SELECT 1 FROM transactions r WHERE r.refunds_id = i.transaction_id AND r.kind = 'refund' AND r.occurred_at < $3)
  AND NOT EXISTS (SELECT 1 FROM transactions r
                  JOIN transactions s ON s.store_id = r.store_id AND s.txn_id = r.refunds_txn_id
                  WHERE s.id = i.transaction_id AND r.kind = 'refund' AND r.refunds_id IS NULL AND r.occurred_at < $3)`

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

// categoriesCeilingSQL is the ceiling of the category report: the lines of the segment's sales
// in the window ($1, $2) joined to the catalogue and summed by category, without the refund
// check and the per-sale and per-buyer sums. %s is the segment's compiled rules (args from $3).
const categoriesCeilingSQL = `
SELECT lower(nullif(p.category, '')), count(*), sum(i.qty), sum(i.qty::bigint * i.unit_price_minor)
FROM transaction_items i
LEFT JOIN products p ON p.sku = i.sku
WHERE i.kind = 'sale' AND i.member_id IN (SELECT m.id FROM members m WHERE %s)
  AND i.occurred_at >= $1::timestamptz AND i.occurred_at < $2::timestamptz
GROUP BY 1`

// round is one round's times in seconds.
type round struct {
	Round          int     `json:"round"`
	Segment        float64 `json:"segment_count_s"`
	Hand           float64 `json:"hand_query_s"`
	Revenue        float64 `json:"revenue_s,omitempty"`
	RevenueCeiling float64 `json:"revenue_ceiling_s,omitempty"`
	PerMember      float64 `json:"per_member_txns_s,omitempty"`
	PerMemberLines float64 `json:"per_member_lines_s,omitempty"`
	// Categories and CategoriesCeiling are by segment key; a time past -limit is reported as
	// the limit, with the key in CategoriesCut.
	Categories        map[string]float64 `json:"categories_s,omitempty"`
	CategoriesCeiling map[string]float64 `json:"categories_ceiling_s,omitempty"`
	CategoriesCut     []string           `json:"categories_cut_at_limit,omitempty"`
}

// extra are the optional timings.
var extra struct {
	revenueFrom, revenueTo string
	lines                  bool
	categories             []string // segment keys of GET /metrics/categories
	limit                  time.Duration
	tracer                 *lastStatement
	categoryStatements     map[string]statement // by key name: the report's statement as it last ran
}

// lastStatement remembers the last statement (SQL and arguments) that contains each of its
// phrases, so that the statements that models and segments build inside can be EXPLAINed as run.
type lastStatement struct {
	mu      sync.Mutex
	phrases []string
	seen    map[string]statement
}

type statement struct {
	sql  string
	args []any
}

func (l *lastStatement) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	for _, p := range l.phrases {
		if strings.Contains(d.SQL, p) {
			l.mu.Lock()
			l.seen[p] = statement{d.SQL, d.Args}
			l.mu.Unlock()
		}
	}
	return ctx
}

func (l *lastStatement) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (l *lastStatement) get(phrase string) (statement, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.seen[phrase]
	return s, ok
}

// Phrases that only the statement of models.Revenue and of segments.Categories contain.
const (
	revenuePhrase    = "WITH st AS MATERIALIZED"
	categoriesPhrase = "), per_order AS ("
)

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
	categories := flag.String("categories", "", "also time GET /metrics/categories for these comma-separated segment keys (all, store:<code>, …, bought)")
	flag.DurationVar(&extra.limit, "limit", 5*time.Minute, "cut each category report, its ceiling and its EXPLAIN at this time")
	flag.Parse()
	if *categories != "" {
		extra.categories = strings.Split(*categories, ",")
	}
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
	// The same pool with a tracer that keeps the statements to EXPLAIN. Config() is a copy of
	// models.Open's, with its cancel handler: a statement cut by -limit stops on the server.
	cfg := db.Pool.Config()
	extra.tracer = &lastStatement{phrases: []string{revenuePhrase, categoriesPhrase}, seen: map[string]statement{}}
	extra.categoryStatements = map[string]statement{}
	cfg.ConnConfig.Tracer = extra.tracer
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer traced.Close()
	db.Pool = traced
	tree := &segments.Node{Field: "bought_category", Op: segments.Eq, Value: category}
	keys, err := categoryKeys(ctx, db, category)
	if err != nil {
		return err
	}

	var out struct {
		Category     string  `json:"category"`
		Members      int64   `json:"members"`
		Rounds       []round `json:"rounds"`
		SegmentBestS float64 `json:"segment_count_best_s"`
		HandBestS    float64 `json:"hand_query_best_s"`
		Ratio        float64 `json:"ratio_best"`
		// Best of the rounds by segment key (GET /metrics/categories) and of its ceiling.
		CategoriesBestS        map[string]float64 `json:"categories_best_s,omitempty"`
		CategoriesCeilingBestS map[string]float64 `json:"categories_ceiling_best_s,omitempty"`
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
		if err := timeCategories(ctx, db, &rd, keys, from, asOf); err != nil {
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
	if len(keys) > 0 {
		out.CategoriesBestS, out.CategoriesCeilingBestS = map[string]float64{}, map[string]float64{}
		for _, k := range keys {
			out.CategoriesBestS[k.name] = best(func(r round) float64 { return r.Categories[k.name] })
			out.CategoriesCeilingBestS[k.name] = best(func(r round) float64 { return r.CategoriesCeiling[k.name+" ceiling"] })
		}
	}
	if explainDir != "" {
		if err := explainBoth(ctx, db, tree, asOf, category, from, explainDir); err != nil {
			return err
		}
		if err := explainTraced(ctx, db, keys, from, asOf, explainDir); err != nil {
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
	if err := explainTo(ctx, db, filepath.Join(dir, "segment-count.txt"), "SELECT count(*) FROM members m WHERE "+where, args); err != nil {
		return err
	}
	return explainTo(ctx, db, filepath.Join(dir, "hand-count.txt"), handSQL, []any{category, from, asOf})
}

// explainTo writes EXPLAIN (ANALYZE, BUFFERS) of sql into file.
func explainTo(ctx context.Context, db *models.DB, file, sql string, args []any) error {
	plan, err := explainPlan(ctx, db, "EXPLAIN (ANALYZE, BUFFERS) ", sql, args)
	if err != nil {
		return fmt.Errorf("explain %s: %w", file, err)
	}
	return os.WriteFile(file, plan, 0o644)
}

func explainPlan(ctx context.Context, db *models.DB, explain, sql string, args []any) ([]byte, error) {
	rows, err := db.Pool.Query(ctx, explain+sql, args...)
	if err != nil {
		return nil, err
	}
	var plan []byte
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, err
		}
		plan = append(plan, line+"\n"...)
	}
	return plan, rows.Err()
}

// categoryKey is a segment key of the category report and its rules.
type categoryKey struct {
	name, key string // name: as asked (bought), key: as GET /metrics/categories takes it
	tree      *segments.Node
}

// categoryKeys resolves the -categories keys. "bought" is a saved segment with one
// bought_category rule for category, created the first time (and kept: a later run reuses it).
func categoryKeys(ctx context.Context, db *models.DB, category string) ([]categoryKey, error) {
	var out []categoryKey
	for _, name := range extra.categories {
		key := name
		if name == "bought" {
			id, err := boughtSegment(ctx, db, category)
			if err != nil {
				return nil, err
			}
			key = fmt.Sprintf("segment:%d", id)
		}
		tree, err := segments.KeyTree(ctx, db, key, "segment")
		if err != nil {
			return nil, fmt.Errorf("categories %s: %w", name, err)
		}
		out = append(out, categoryKey{name, key, tree})
	}
	return out, nil
}

func boughtSegment(ctx context.Context, db *models.DB, category string) (int64, error) {
	name := "benchcatalogue: bought " + category
	var id int64
	err := db.Pool.QueryRow(ctx, `SELECT id FROM segments WHERE lower(name) = lower($1)`, name).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, err
	}
	rules, err := json.Marshal(map[string]string{"field": "bought_category", "op": "eq", "value": category})
	if err != nil {
		return 0, err
	}
	s, err := segments.Create(ctx, db, segments.SavedInput{Name: name, Rules: rules})
	if err != nil {
		return 0, err
	}
	return s.ID, nil
}

// ceilingOf is the category ceiling's SQL and arguments for a segment.
func ceilingOf(k categoryKey, windowStart, asOf time.Time) (string, []any, error) {
	where, args := "true", []any(nil)
	if k.tree != nil {
		var err error
		if where, args, err = segments.Compile(k.tree, asOf, 2); err != nil {
			return "", nil, err
		}
	}
	return fmt.Sprintf(categoriesCeilingSQL, where), append([]any{windowStart, asOf}, args...), nil
}

// timeCategories times the category report of each key and its ceiling, each cut at -limit.
func timeCategories(ctx context.Context, db *models.DB, rd *round, keys []categoryKey, windowStart, asOf time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	rd.Categories, rd.CategoriesCeiling = map[string]float64{}, map[string]float64{}
	bounded := func(into map[string]float64, label string, fn func(context.Context) error) error {
		c, cancel := context.WithTimeout(ctx, extra.limit)
		defer cancel()
		start := time.Now()
		err := fn(c)
		into[label] = secs(time.Since(start))
		if err != nil && c.Err() != nil && ctx.Err() == nil {
			into[label] = secs(extra.limit)
			rd.CategoriesCut = append(rd.CategoriesCut, label)
			return nil
		}
		return err
	}
	for _, k := range keys {
		if err := bounded(rd.Categories, k.name, func(c context.Context) error {
			_, err := segments.Categories(c, db, k.key, asOf)
			return err
		}); err != nil {
			return fmt.Errorf("categories %s: %w", k.name, err)
		}
		if s, ok := extra.tracer.get(categoriesPhrase); ok {
			extra.categoryStatements[k.name] = s
		}
		sql, args, err := ceilingOf(k, windowStart, asOf)
		if err != nil {
			return err
		}
		if err := bounded(rd.CategoriesCeiling, k.name+" ceiling", func(c context.Context) error {
			rows, err := db.Pool.Query(c, sql, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
			}
			return rows.Err()
		}); err != nil {
			return fmt.Errorf("categories %s ceiling: %w", k.name, err)
		}
	}
	return nil
}

// explainTraced writes the plans of the revenue statement and of each category report (as the
// tracer last saw them run) and of the category ceilings, each cut at -limit.
func explainTraced(ctx context.Context, db *models.DB, keys []categoryKey, windowStart, asOf time.Time, dir string) error {
	bounded := func(file, sql string, args []any) error {
		c, cancel := context.WithTimeout(ctx, extra.limit)
		defer cancel()
		err := explainTo(c, db, filepath.Join(dir, file), sql, args)
		if err != nil && c.Err() != nil && ctx.Err() == nil { // cut: the estimated plan, without running it
			plan, err := explainPlan(ctx, db, "EXPLAIN ", sql, args)
			if err != nil {
				return fmt.Errorf("explain %s: %w", file, err)
			}
			note := fmt.Sprintf("EXPLAIN (ANALYZE, BUFFERS) cut at %s; the planner's estimates:\n", extra.limit)
			return os.WriteFile(filepath.Join(dir, file), append([]byte(note), plan...), 0o644)
		}
		return err
	}
	if s, ok := extra.tracer.get(revenuePhrase); ok {
		if err := bounded("revenue.txt", s.sql, s.args); err != nil {
			return err
		}
		if err := bounded("revenue-ceiling.txt", revenueCeilingSQL, []any{extra.revenueFrom, extra.revenueTo}); err != nil {
			return err
		}
	}
	for _, k := range keys {
		file := "categories-" + strings.NewReplacer(":", "-", "/", "-").Replace(k.name)
		if s, ok := extra.categoryStatements[k.name]; ok {
			if err := bounded(file+".txt", s.sql, s.args); err != nil {
				return err
			}
		}
		sql, args, err := ceilingOf(k, windowStart, asOf)
		if err != nil {
			return err
		}
		if err := bounded(file+"-ceiling.txt", sql, args); err != nil {
			return err
		}
	}
	return nil
}

func secs(d time.Duration) float64 { return float64(d.Round(time.Millisecond)) / float64(time.Second) }
