// Command benchmetrics times the segment metrics job per segment family for
// scripts/bench-metrics.sh: for each family, in interleaved rounds, one hand-written SQL query
// computing customers, repeat_purchase_rate and aov for that family, then metrics.Compute with
// Options.Families set to that family alone. A pgx tracer times each statement of the job, so
// the segment statement can be told apart from the model step that every run does whatever its
// families. It also times Compute with an empty family (the fixed cost of a run) and the BG/NBD
// fit alone on the groups of the latest run, and prints everything as JSON.
//
//	benchmetrics -url postgres://... -as-of 2026-01-01 -tz Europe/Oslo -rounds 2
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/regulars/regulars/jobs/clv"
	"github.com/regulars/regulars/jobs/metrics"
	"github.com/regulars/regulars/models"
)

// perMember is how each family's hand-written query (handSQL) starts: per member over the window,
// $1 A−W to $2 A; the family's query then groups by its segment.
const perMember = `
WITH pm AS (
    SELECT member_id,
           count(*) FILTER (WHERE kind = 'sale') AS orders,
           sum(net_amount(kind, amount_minor)) AS net
    FROM transactions
    WHERE member_id IS NOT NULL AND occurred_at >= $1 AND occurred_at < $2
    GROUP BY member_id
)
`

const aggregates = `count(*) FILTER (WHERE pm.orders >= 1) AS customers,
       (count(*) FILTER (WHERE pm.orders >= 2))::numeric / NULLIF(count(*) FILTER (WHERE pm.orders >= 1), 0) AS repeat_purchase_rate,
       sum(pm.net)::numeric / NULLIF(sum(pm.orders), 0) AS aov`

// handSQL is the hand-written query of each family: $1 A−W, $2 A, $3 the time zone (if used). Per
// member over the window, then one GROUP BY the family's segment.
var handSQL = map[string]string{
	"all": perMember + `SELECT 'all', ` + aggregates + ` FROM pm`,
	"store": perMember + `SELECT 'store:' || s.code, ` + aggregates + `
FROM pm JOIN members m ON m.id = pm.member_id JOIN stores s ON s.id = m.home_store_id
GROUP BY s.code`,
	"cohort": perMember + `SELECT 'cohort:' || to_char(m.joined_at AT TIME ZONE $3::text, 'YYYY-"Q"Q'), ` + aggregates + `
FROM pm JOIN members m ON m.id = pm.member_id
GROUP BY 1`,
	"rfm": perMember + `SELECT 'rfm:' || mm.rfm_segment, ` + aggregates + `
FROM pm JOIN member_metrics mm ON mm.member_id = pm.member_id
GROUP BY 1`,
}

// handArgs are the arguments of a hand-written query: the time zone only if it reads $3.
func handArgs(sql string, windowStart, asOf time.Time, tz string) []any {
	if strings.Contains(sql, "$3") {
		return []any{windowStart, asOf, tz}
	}
	return []any{windowStart, asOf}
}

// tracer records the duration of each statement, keyed by what it does.
type tracer struct {
	mu    sync.Mutex
	times map[string]time.Duration
}

type startKey struct{}

type started struct {
	sql string
	at  time.Time
}

func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, startKey{}, started{d.SQL, time.Now()})
}

func (t *tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	s, ok := ctx.Value(startKey{}).(started)
	if !ok {
		return
	}
	t.mu.Lock()
	t.times[label(s.sql)] += time.Since(s.at)
	t.mu.Unlock()
}

func (t *tracer) reset() map[string]time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.times
	t.times = map[string]time.Duration{}
	return m
}

// label names a statement of jobs/metrics by a phrase that only it contains.
func label(sql string) string {
	for _, l := range []struct{ phrase, name string }{
		{"INSERT INTO segment_metrics", "segment_statement"},
		{"CREATE TEMP TABLE metrics_summary", "member_summary"},
		{"metrics_member_results ON COMMIT DROP AS", "member_results"},
		// The member_metrics write: the new table's rows, indexes, statistics and foreign keys,
		// then the locks, the drop and the renames (jobs/metrics/store.go).
		{"member_metrics_next", "member_metrics_write"},
		{"LOCK TABLE member_metrics", "member_metrics_write"},
		{"DROP TABLE member_metrics", "member_metrics_write"},
		{"ALTER TABLE member_metrics RENAME", "member_metrics_write"},
		{"ALTER INDEX \"next_", "member_metrics_write"},
		{"FROM metrics_summary WHERE frequency IS NOT NULL", "read_groups"},
	} {
		if strings.Contains(sql, l.phrase) {
			return l.name
		}
	}
	return "other"
}

func secs(d time.Duration) float64 { return float64(d.Round(time.Millisecond)) / float64(time.Second) }

// familyRound is one round of one family.
type familyRound struct {
	Family     string             `json:"family"`
	Round      int                `json:"round"`
	HandQuery  float64            `json:"hand_query_s"`
	HandRows   int                `json:"hand_query_rows"`
	Compute    float64            `json:"compute_s"`
	Statements map[string]float64 `json:"compute_statements_s"`
}

func main() {
	url := flag.String("url", "", "database URL")
	asOf := flag.String("as-of", "2026-01-01", "as-of date")
	tzName := flag.String("tz", "UTC", "time zone (REGULARS_TIMEZONE)")
	rounds := flag.Int("rounds", 2, "interleaved rounds per family")
	explain := flag.String("explain", "", "directory to write EXPLAIN (ANALYZE, BUFFERS) of each hand-written query into")
	flag.Parse()
	if err := run(context.Background(), *url, *asOf, *tzName, *rounds, *explain); err != nil {
		fmt.Fprintln(os.Stderr, "benchmetrics:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url, asOfText, tzName string, rounds int, explainDir string) error {
	tz, err := time.LoadLocation(tzName)
	if err != nil {
		return err
	}
	d, err := time.Parse(time.DateOnly, asOfText)
	if err != nil {
		return err
	}
	asOf := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, tz)
	windowStart := time.Date(d.Year(), d.Month(), d.Day()-metrics.DefaultWindowDays, 0, 0, 0, 0, tz)

	db, err := models.Open(ctx, url, 4)
	if err != nil {
		return err
	}
	defer db.Close()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return err
	}
	tr := &tracer{times: map[string]time.Duration{}}
	cfg.ConnConfig.Tracer = tr
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer traced.Close()
	db.Pool = traced // Compute uses only the pool and the clock

	compute := func(fams []metrics.Family) (float64, map[string]float64, error) {
		tr.reset()
		start := time.Now()
		_, err := metrics.Compute(ctx, db, metrics.Options{AsOf: d, Timezone: tz, Families: fams})
		took := time.Since(start)
		stmts := map[string]float64{}
		var sum time.Duration
		for k, v := range tr.reset() {
			stmts[k] = secs(v)
			sum += v
		}
		stmts["go_and_copy"] = secs(took - sum) // the fits, predictions and COPYs of group results
		return secs(took), stmts, err
	}
	hand := func(name string) (float64, int, error) {
		start := time.Now()
		rows, err := db.Pool.Query(ctx, handSQL[name], handArgs(handSQL[name], windowStart, asOf, tzName)...)
		if err != nil {
			return 0, 0, err
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			return 0, 0, err
		}
		return secs(time.Since(start)), n, nil
	}

	out := struct {
		Families      []string           `json:"families"`
		EmptyFamily   []float64          `json:"compute_empty_family_s"`
		EmptyStmts    map[string]float64 `json:"compute_empty_family_statements_s"`
		Rounds        []familyRound      `json:"rounds"`
		BGNBDGroups   int                `json:"bgnbd_groups"`
		BGNBDMembers  int                `json:"bgnbd_members"`
		BGNBDFit      []float64          `json:"bgnbd_fit_s"`
		BGNBDParams   clv.BGNBDParams    `json:"bgnbd_params"`
		GammaGammaFit []float64          `json:"gamma_gamma_fit_s"`
		PeakRSSMB     float64            `json:"peak_rss_mb"`
	}{}

	var fams []metrics.Family
	for _, f := range metrics.DefaultFamilies() {
		if _, ok := handSQL[f.Name]; !ok {
			// A family added to the job after this tool (tier:, with no tiers in the
			// generated data) is skipped, not a reason to lose the others' figures.
			fmt.Fprintf(os.Stderr, "benchmetrics: skipping family %q: no hand-written query\n", f.Name)
			continue
		}
		fams = append(fams, f)
		out.Families = append(out.Families, f.Name)
	}
	empty := []metrics.Family{{Name: "none", Membership: `SELECT 'none'::text, NULL::bigint`}}
	for r := 1; r <= rounds; r++ {
		for _, f := range fams {
			fr := familyRound{Family: f.Name, Round: r}
			if fr.HandQuery, fr.HandRows, err = hand(f.Name); err != nil {
				return fmt.Errorf("hand-written query %s: %w", f.Name, err)
			}
			if fr.Compute, fr.Statements, err = compute([]metrics.Family{f}); err != nil {
				return fmt.Errorf("compute %s: %w", f.Name, err)
			}
			fmt.Fprintf(os.Stderr, "%s  round %d %-7s hand %.2f s, compute %.2f s (segment statement %.2f s)\n",
				time.Now().UTC().Format("15:04:05"), r, f.Name, fr.HandQuery, fr.Compute, fr.Statements["segment_statement"])
			out.Rounds = append(out.Rounds, fr)
		}
		t, stmts, err := compute(empty)
		if err != nil {
			return fmt.Errorf("compute empty family: %w", err)
		}
		out.EmptyFamily, out.EmptyStmts = append(out.EmptyFamily, t), stmts
		fmt.Fprintf(os.Stderr, "%s  round %d empty family: compute %.2f s\n", time.Now().UTC().Format("15:04:05"), r, t)
	}

	// The BG/NBD fit alone, on the groups of the latest run (member_metrics keeps x, t_x, T).
	rows, err := db.Pool.Query(ctx, `SELECT frequency, recency_days, t_days, count(*) FROM member_metrics
		WHERE frequency IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)
	if err != nil {
		return err
	}
	groups, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (clv.Group, error) {
		var x, rec, age int
		var n int64
		err := row.Scan(&x, &rec, &age, &n)
		return clv.Group{Customer: clv.Customer{Frequency: x, Recency: float64(rec), T: float64(age)}, Count: int(n)}, err
	})
	if err != nil {
		return err
	}
	out.BGNBDGroups = len(groups)
	for _, g := range groups {
		out.BGNBDMembers += g.Count
	}
	for range 3 {
		start := time.Now()
		fit, err := clv.FitBGNBD(groups)
		if err != nil {
			return fmt.Errorf("fit BG/NBD: %w", err)
		}
		out.BGNBDFit = append(out.BGNBDFit, secs(time.Since(start)))
		out.BGNBDParams = fit.Params
	}
	rows, err = db.Pool.Query(ctx, `SELECT frequency, round(monetary_value / 100, 2)::float8, count(*) FROM member_metrics
		WHERE frequency >= 1 AND monetary_value > 0 GROUP BY 1, 2`)
	if err != nil {
		return err
	}
	pairs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (clv.SpendGroup, error) {
		var g clv.SpendGroup
		var n int64
		err := row.Scan(&g.Frequency, &g.MeanValue, &n)
		g.Count = int(n)
		return g, err
	})
	if err != nil {
		return err
	}
	for range 3 {
		start := time.Now()
		if _, err := clv.FitGammaGamma(pairs); err != nil {
			return fmt.Errorf("fit Gamma-Gamma: %w", err)
		}
		out.GammaGammaFit = append(out.GammaGammaFit, secs(time.Since(start)))
	}

	if explainDir != "" {
		if err := os.MkdirAll(explainDir, 0o755); err != nil {
			return err
		}
		for _, f := range fams {
			rows, err := db.Pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+handSQL[f.Name], handArgs(handSQL[f.Name], windowStart, asOf, tzName)...)
			if err != nil {
				return err
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(explainDir, "hand-"+f.Name+".txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				return err
			}
		}
	}
	out.PeakRSSMB = peakRSS()
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// peakRSS is the process's VmHWM in MB, 0 if /proc cannot tell.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			var kb float64
			fmt.Sscan(f[1], &kb)
			return kb / 1024
		}
	}
	return 0
}
