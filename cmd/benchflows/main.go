// Command benchflows measures flow trigger detection (issue 11, docs/benchmarks.md "Flows") on
// the data set of the metrics benchmark (cmd/gencsv -format members and -format retail: 1M
// members, 10M transactions). Three subcommands, run in this order by cmd/benchflows/bench-flows.sh:
//
//	benchflows shift -to 2026-12-06T03:00:00Z [-birthdays 0.4] < in.csv > out.csv
//	benchflows prepare -url postgres://... [-live-since 2026-11-06T03:00:00Z]
//	benchflows triggers -url postgres://... -tz Europe/Oslo [-repeats 5] [-explain dir]
//
// shift moves the times of a gencsv file (occurred_at, joined_at) so that its end, 2026-01-01,
// falls on -to: the data then ends now, as a live shop's does. For members it adds a birthday
// column for a share of them.
//
// prepare makes the loaded data look like a running shop's: the sales since -live-since
// came through the tills (live, received a moment after they occurred), consented members
// confirmed their consent when they joined (confirmed_at), a tier ladder, half the members in
// an earlier flow (paused, entries done: flow_entries is not empty, as in a shop that has used
// flows), and member_metrics p_alive (from a metrics run if there was one, else synthetic).
//
// triggers, for each trigger kind, creates and activates one flow (the only active one) and,
// in alternating order, repeats: one flows.Engine.Tick on it with its entries deleted and its
// watermark set back (a pgx tracer times the entry statement, INSERT INTO flow_entries … SELECT,
// and the tick's other statements), and a hand-written SELECT count(*) of the same condition.
// It prints medians and the ratio as JSON; -explain writes EXPLAIN (ANALYZE, BUFFERS) of both.
package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/regulars/regulars/flows"
	"github.com/regulars/regulars/models"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchflows shift|prepare|triggers [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "shift":
		err = shiftCmd(os.Args[2:])
	case "prepare":
		err = prepareCmd(os.Args[2:])
	case "triggers":
		err = triggersCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchflows:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// dataEnd is where cmd/gencsv's members and sales end (salesEnd in cmd/gencsv/retail.go).
var dataEnd = time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("+01:00", 3600))

// shiftCmd copies a gencsv CSV from stdin to stdout with its occurred_at and joined_at columns
// moved by -to − 2026-01-01, and, for members, a birthday column (--MM-DD or YYYY-MM-DD) for a
// share of them.
func shiftCmd(args []string) error {
	fs := flag.NewFlagSet("shift", flag.ExitOnError)
	to := fs.String("to", "", "where 2026-01-01 (the end of gencsv's data) should fall, RFC 3339 (default: now)")
	birthdays := fs.Float64("birthdays", 0.4, "share of members given a birthday (members files)")
	_ = fs.Parse(args)
	end := time.Now().Truncate(time.Second)
	if *to != "" {
		var err error
		if end, err = time.Parse(time.RFC3339, *to); err != nil {
			return err
		}
	}
	by := end.Sub(dataEnd)
	r := csv.NewReader(bufio.NewReaderSize(os.Stdin, 1<<20))
	r.ReuseRecord = true
	r.FieldsPerRecord = -1
	bw := bufio.NewWriterSize(os.Stdout, 1<<20)
	w := csv.NewWriter(bw)
	header, err := r.Read()
	if err != nil {
		return err
	}
	header = slices.Clone(header)
	var cols []int
	members := false
	for i, h := range header {
		switch h {
		case "occurred_at":
			cols = append(cols, i)
		case "joined_at":
			cols = append(cols, i)
			members = true
		}
	}
	if len(cols) == 0 {
		return errors.New("no occurred_at or joined_at column")
	}
	if members {
		header = append(header, "birthday")
	}
	if err := w.Write(header); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(11, 5))
	out := make([]string, 0, len(header))
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		out = append(out[:0], rec...)
		for _, c := range cols {
			if out[c] == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339, out[c])
			if err != nil {
				return fmt.Errorf("%s: %w", header[c], err)
			}
			out[c] = t.Add(by).Format(time.RFC3339)
		}
		if members {
			b := ""
			if rng.Float64() < *birthdays {
				// A day of a leap year, so 29 February occurs; a quarter without the year.
				day := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(366))
				if rng.IntN(4) == 0 {
					b = day.Format("--01-02")
				} else {
					b = fmt.Sprintf("%d-%s", 1950+rng.IntN(56), day.Format("01-02"))
					if _, err := time.Parse(time.DateOnly, b); err != nil {
						b = day.Format("--01-02") // 29 February of a year without it
					}
				}
			}
			out = append(out, b)
		}
		if err := w.Write(out); err != nil {
			return err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// prepareCmd makes the loaded data look like a running shop's (see the package doc).
func prepareCmd(args []string) error {
	fs := flag.NewFlagSet("prepare", flag.ExitOnError)
	url := fs.String("url", "", "database URL")
	liveSince := fs.String("live-since", "", "sales since this time (RFC 3339) came through the tills (live); default 30 days ago")
	_ = fs.Parse(args)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, *url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	since := time.Now().AddDate(0, 0, -30)
	if *liveSince != "" {
		var err error
		if since, err = time.Parse(time.RFC3339, *liveSince); err != nil {
			return err
		}
	}
	steps := []struct{ what, sql string }{
		{"live sales", fmt.Sprintf(`UPDATE transactions SET live = true, received_at = occurred_at + interval '2 seconds'
			WHERE occurred_at >= '%s' AND NOT live`, since.UTC().Format(time.RFC3339))},
		{"confirmed_at", `UPDATE members SET confirmed_at = joined_at
			WHERE marketing_consent = 'confirmed' AND confirmed_at IS NULL`},
		{"tier ladder", `INSERT INTO tiers (name, min_spend_minor, discount_percent)
			SELECT * FROM (VALUES ('Silver', 100000::bigint, 5::numeric), ('Gold', 300000, 10)) v
			WHERE NOT EXISTS (SELECT 1 FROM tiers)`},
		// A shop that has run flows for a while: half the members went through an earlier flow
		// (done), so flow_entries and its statistics are not empty when a new flow starts.
		{"flow history", `WITH f AS (
				INSERT INTO flows (name, trigger, steps, status, activated_at)
				SELECT 'benchflows history', '{"event": "joined"}', '[{"wait": "1h"}]', 'paused', now() - interval '90 days'
				WHERE NOT EXISTS (SELECT 1 FROM flows WHERE name = 'benchflows history')
				RETURNING id)
			INSERT INTO flow_entries (flow_id, member_id, event_key, held_out, entered_at, step, next_at, status, finished_at)
			SELECT f.id, m.id, 'joined', false, now() - interval '90 days', 1, now() - interval '90 days', 'done', now() - interval '89 days'
			FROM f CROSS JOIN members m WHERE m.id % 2 = 0`},
		// Only when no metrics run filled member_metrics: a p_alive that falls with the days since
		// the last sale, with noise.
		{"synthetic p_alive", `WITH run AS (
				INSERT INTO metric_runs (as_of, timezone, window_days, churn_days, lifespan_cap_years, finished_at, status)
				SELECT current_date, 'UTC', 365, 90, 5, now(), 'done' WHERE NOT EXISTS (SELECT 1 FROM member_metrics)
				RETURNING id)
			INSERT INTO member_metrics (member_id, run_id, as_of, days_since_last_purchase, orders_365d, spend_365d, p_alive)
			SELECT m.id, run.id, current_date, d.days, 0, 0,
			       CASE WHEN d.days IS NULL THEN NULL ELSE least(1, greatest(0, exp(-d.days / 200.0) + (random() - 0.5) / 5)) END
			FROM run CROSS JOIN members m
			LEFT JOIN LATERAL (SELECT (current_date - max(t.occurred_at)::date) AS days FROM transactions t
			                   WHERE t.member_id = m.id AND t.kind = 'sale') d ON true`},
	}
	for _, s := range steps {
		start := time.Now()
		tag, err := conn.Exec(ctx, s.sql)
		if err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		logf("%s: %d rows in %.1f s", s.what, tag.RowsAffected(), time.Since(start).Seconds())
	}
	start := time.Now()
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE transactions, members, member_metrics, tiers, flows, flow_entries`); err != nil {
		return err
	}
	logf("VACUUM ANALYZE in %.1f s", time.Since(start).Seconds())
	var summary string
	if err := conn.QueryRow(ctx, `SELECT format('%s members (%s mailable, %s with a birthday), %s transactions (%s live, newest received %s), %s with p_alive',
			(SELECT count(*) FROM members), (SELECT count(*) FROM members WHERE status = 'active' AND marketing_consent = 'confirmed' AND email IS NOT NULL),
			(SELECT count(*) FROM members WHERE birth_date IS NOT NULL),
			(SELECT count(*) FROM transactions), (SELECT count(*) FROM transactions WHERE live),
			(SELECT max(received_at) FROM transactions WHERE live), (SELECT count(p_alive) FROM member_metrics))`).Scan(&summary); err != nil {
		return err
	}
	fmt.Println(summary)
	return nil
}

// kind is one trigger kind measured: the flow's trigger, whether its events come from
// transactions or members (for the watermark), and the hand-written query.
type kind struct {
	Name    string
	Trigger string // the trigger's JSON
	Events  string // "transactions", "members" or "" (a state trigger)
	Window  time.Duration
	// Hand is the hand-written query of the members who enter (one row each, member_id): $1 the
	// lower bound of event times, $2 the time zone, then Args. It is timed as SELECT count(*)
	// FROM (Hand), and as an INSERT of its rows into flow_entries (rolled back), the ceiling of
	// an entry statement that also writes its entries.
	Hand string
	Args []any
	// Needs is a table a rewrite reads: without it the rewrite is skipped.
	Needs string
	// HandOnly: measure the hand-written query and its rewrites, not the engine.
	HandOnly bool
	// EnterOnly: stop each tick after its entry statement.
	EnterOnly bool
}

// mailable is what the engine adds to every trigger (segments.Mailable and the suppression
// check), written as a DBA would.
const mailable = `m.status = 'active' AND m.marketing_consent = 'confirmed' AND m.email IS NOT NULL
	AND NOT EXISTS (SELECT 1 FROM email_suppressions es WHERE es.email = lower(m.email) AND es.suppressed_at IS NOT NULL)`

func kinds(window time.Duration, now time.Time, tz *time.Location) []kind {
	// The birthday 0 days ahead in the shop's zone, with 29 February on the 28th in other years.
	day := now.In(tz)
	m2, d2 := int(day.Month()), day.Day()
	if day.Month() == time.February && day.Day() == 28 && day.AddDate(0, 0, 1).Day() == 1 {
		m2, d2 = 2, 29
	}
	return []kind{
		{Name: "joined", Trigger: `{"event": "joined"}`, Events: "members", Window: window,
			Hand: `SELECT m.id AS member_id FROM members m
				WHERE m.confirmed_at >= $1 AND m.confirmed_at <= now() AND ($2::text IS NOT NULL) AND ` + mailable},
		{Name: "first_purchase", Trigger: `{"event": "first_purchase"}`, Events: "transactions", Window: window,
			Hand: `SELECT DISTINCT t.member_id FROM transactions t JOIN members m ON m.id = t.member_id
				WHERE t.live AND t.member_id IS NOT NULL AND t.received_at >= $1 AND t.kind = 'sale' AND ($2::text IS NOT NULL)
				  AND t.id = (SELECT p.id FROM transactions p WHERE p.member_id = t.member_id AND p.kind = 'sale'
				              ORDER BY p.occurred_at, p.id LIMIT 1)
				  AND ` + mailable},
		{Name: "purchase_count 3", Trigger: `{"event": "purchase_count", "count": 3}`, Events: "transactions", Window: window,
			Hand: `SELECT DISTINCT t.member_id FROM transactions t JOIN members m ON m.id = t.member_id
				WHERE t.live AND t.member_id IS NOT NULL AND t.received_at >= $1 AND t.kind = 'sale' AND ($2::text IS NOT NULL)
				  AND (SELECT count(*) FROM transactions p WHERE p.member_id = t.member_id AND p.kind = 'sale'
				       AND (p.occurred_at, p.id) <= (t.occurred_at, t.id)) = $3
				  AND ` + mailable, Args: []any{3}},
		// The net spend of the trailing year just before and just after the sale or refund, each
		// put on the ladder.
		{Name: "tier_changed", Trigger: `{"event": "tier_changed"}`, Events: "transactions", Window: window,
			Hand: `SELECT DISTINCT s.member_id FROM (
				  SELECT t.member_id,
				    (SELECT max(min_spend_minor) FROM tiers WHERE min_spend_minor <= sp.before) AS tier_before,
				    (SELECT max(min_spend_minor) FROM tiers WHERE min_spend_minor <= sp.before + sp.at_once) AS tier_after
				  FROM transactions t
				  CROSS JOIN LATERAL (
				    SELECT coalesce(sum(net_amount(p.kind, p.amount_minor)) FILTER (WHERE p.occurred_at < t.occurred_at), 0) AS before,
				           coalesce(sum(net_amount(p.kind, p.amount_minor)) FILTER (WHERE p.occurred_at = t.occurred_at), 0) AS at_once
				    FROM transactions p WHERE p.member_id = t.member_id
				      AND p.occurred_at >= ((t.occurred_at AT TIME ZONE $2) - interval '365 days') AT TIME ZONE $2
				      AND p.occurred_at <= t.occurred_at) sp
				  WHERE t.live AND t.member_id IS NOT NULL AND t.received_at >= $1) s
				JOIN members m ON m.id = s.member_id
				WHERE s.tier_before IS DISTINCT FROM s.tier_after AND ` + mailable},
		{Name: "birthday", Trigger: `{"event": "birthday", "days_before": 0}`,
			Hand: `SELECT m.id AS member_id FROM members m
				WHERE (extract(month FROM m.birth_date), extract(day FROM m.birth_date)) IN (($3, $4), ($5, $6)) AND m.id <= MEMBER_ID_MAX
				  AND ($1::timestamptz, $2::text) IS NOT NULL AND ` + mailable,
			Args: []any{int(day.Month()), day.Day(), m2, d2}},
		{Name: "lapsed 60", Trigger: `{"event": "lapsed", "days": 60}`,
			Hand: `SELECT m.id AS member_id FROM members m
				JOIN (SELECT member_id, max(occurred_at) AS last FROM transactions
				      WHERE kind = 'sale' AND member_id <= MEMBER_ID_MAX GROUP BY member_id) l ON l.member_id = m.id
				WHERE l.last < now() - interval '60 days' AND ($1::timestamptz, $2::text) IS NOT NULL AND ` + mailable},
		{Name: "lapsed personal 30, 2×", Trigger: `{"event": "lapsed", "days": 30, "personal": true, "factor": 2}`,
			Hand: `WITH s AS (SELECT member_id, occurred_at FROM transactions WHERE kind = 'sale' AND member_id <= MEMBER_ID_MAX),
				last AS (SELECT member_id, max(occurred_at) AS last FROM s GROUP BY member_id),
				days AS (SELECT DISTINCT member_id, (occurred_at AT TIME ZONE $2)::date AS day FROM s),
				gaps AS (SELECT member_id, day - lag(day) OVER (PARTITION BY member_id ORDER BY day) AS gap FROM days),
				med AS (SELECT member_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS median_gap
				        FROM gaps WHERE gap IS NOT NULL GROUP BY member_id)
				SELECT m.id AS member_id FROM last JOIN members m ON m.id = last.member_id LEFT JOIN med ON med.member_id = last.member_id
				WHERE last.last < now() - interval '30 days' AND ($1::timestamptz IS NOT NULL)
				  AND (med.median_gap IS NULL OR last.last < now() - med.median_gap * 2 * interval '1 day') AND ` + mailable},
		{Name: "p_alive_below 0.3", Trigger: `{"event": "p_alive_below", "value": 0.3}`,
			Hand: `SELECT m.id AS member_id FROM member_metrics mm JOIN members m ON m.id = mm.member_id
				WHERE mm.p_alive < 0.3 AND mm.member_id <= MEMBER_ID_MAX AND ($1::timestamptz, $2::text) IS NOT NULL AND ` + mailable},
	}
}

// rewrites are hand-written candidates for a faster engine statement, measured beside the
// kind of the same name (see docs/benchmarks.md, "Flows").
var rewrites = map[string][]kind{
	// The engine's own LATERAL form, with the mailable members chosen before the lookup of
	// their last sale rather than after.
	"lapsed 60": {{Name: "lateral-mailable-first",
		Hand: `SELECT m.id AS member_id FROM members m
			CROSS JOIN LATERAL (SELECT t.id, t.occurred_at FROM transactions t WHERE t.member_id = m.id AND t.kind = 'sale'
			                    ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1) last
			WHERE last.occurred_at < now() - interval '60 days' AND ($1::timestamptz, $2::text) IS NOT NULL AND ` + mailable}},
	// The member's median gap read from a table (bench_median_gap, made by -setup; in the
	// product it would be a member_metrics column the metrics run fills) instead of computed
	// from the member's history on every evaluation.
	"lapsed personal 30, 2×": {{Name: "precomputed-median-gap", Needs: "bench_median_gap",
		Hand: `SELECT m.id AS member_id FROM members m
			CROSS JOIN LATERAL (SELECT t.id, t.occurred_at FROM transactions t WHERE t.member_id = m.id AND t.kind = 'sale'
			                    ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1) last
			LEFT JOIN bench_median_gap g ON g.member_id = m.id
			WHERE last.occurred_at < now() - interval '30 days' AND ($1::timestamptz, $2::text) IS NOT NULL
			  AND (g.median_gap_days IS NULL OR last.occurred_at < now() - g.median_gap_days * 2 * interval '1 day')
			  AND ` + mailable}},
}

// medianGapSetup makes bench_median_gap for the precomputed-median-gap rewrite ($TZ: the zone).
const medianGapSetup = `CREATE TABLE IF NOT EXISTS bench_median_gap AS
	SELECT member_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS median_gap_days
	FROM (SELECT member_id, day - lag(day) OVER (PARTITION BY member_id ORDER BY day) AS gap
	      FROM (SELECT DISTINCT member_id, (occurred_at AT TIME ZONE '$TZ')::date AS day
	            FROM transactions WHERE kind = 'sale' AND member_id IS NOT NULL) d) g
	WHERE gap IS NOT NULL GROUP BY member_id`

// tracer times each statement, labelled by what it does in the engine.
type tracer struct {
	mu    sync.Mutex
	times map[string]time.Duration
	// last is the last statement of each label and its arguments (for EXPLAIN).
	last map[string]started
	// afterEnter, when set, is called when an entry statement ends (with the rows it inserted).
	afterEnter func(rows int64)
}

type startKey struct{}

type started struct {
	sql  string
	args []any
	at   time.Time
}

func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, startKey{}, started{d.SQL, d.Args, time.Now()})
}

func (t *tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	s, ok := ctx.Value(startKey{}).(started)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := label(s.sql)
	t.times[l] += time.Since(s.at)
	if l == "enter" || l == "exit" {
		if t.last == nil {
			t.last = map[string]started{}
		}
		t.last[l] = s
	}
	if l == "enter" && t.afterEnter != nil {
		t.afterEnter(d.CommandTag.RowsAffected())
	}
}

func (t *tracer) reset() map[string]time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.times
	t.times = map[string]time.Duration{}
	return m
}

func label(sql string) string {
	switch {
	case strings.Contains(sql, "INSERT INTO flow_entries"):
		return "enter"
	case strings.Contains(sql, "SET status = 'exited'"):
		return "exit"
	case strings.Contains(sql, "UPDATE flow_entries"), strings.Contains(sql, "INSERT INTO campaign_recipients"):
		return "advance"
	}
	return "other"
}

// measured is one kind's result.
type measured struct {
	Kind             string    `json:"kind"`
	EngineEnter      []float64 `json:"engine_enter_s"`
	EngineTick       []float64 `json:"engine_tick_s"`
	Hand             []float64 `json:"hand_s"`
	HandInsert       []float64 `json:"hand_insert_s"`
	Entered          int64     `json:"entered"`
	HandCount        int64     `json:"hand_count"`
	MedianEnter      float64   `json:"median_enter_s"`
	MedianTick       float64   `json:"median_tick_s"`
	MedianHand       float64   `json:"median_hand_s"`
	MedianHandInsert float64   `json:"median_hand_insert_s"`
	Ratio            float64   `json:"ratio_enter_to_hand"`
	// Again is the entry statement of a second evaluation when everyone is in already (state
	// triggers: the every-10-minutes case); Steady the tick after that (exit scan, nothing due).
	Again        float64 `json:"again_enter_s,omitempty"`
	Steady       float64 `json:"steady_tick_s"`
	SteadyActive int64   `json:"steady_active_entries"`
	// A round of exit checks over everyone on the way: each tick's exit statement, their sum
	// (FullExit) and the longest tick.
	ExitRound     []float64          `json:"exit_round_statements_s,omitempty"`
	FullExitTick  float64            `json:"exit_round_longest_tick_s"`
	FullExit      float64            `json:"exit_round_statements_sum_s"`
	SteadyStmts   map[string]float64 `json:"steady_tick_statements_s"`
	FirstStmts    map[string]float64 `json:"first_tick_statements_s"`
	RewriteMedian map[string]float64 `json:"rewrite_median_s,omitempty"`
	RewriteCount  map[string]int64   `json:"rewrite_count,omitempty"`
	// A state trigger's first pass over the whole club, tick after tick from the first until the
	// pass ends (flows.Engine.StateSlice members a tick): each tick's entry statement and whole
	// tick, and the members entered. PassRatio is the sum of the entry statements against the
	// hand-written query, which reads the whole club at once.
	PassEnter   []float64 `json:"pass_enter_s,omitempty"`
	PassTick    []float64 `json:"pass_tick_s,omitempty"`
	PassEntered int64     `json:"pass_entered,omitempty"`
	PassRatio   float64   `json:"pass_ratio_enter_to_hand,omitempty"`
	// HandSlice and HandSliceInsert: the hand-written query over the first slice only, counted
	// and written as entries (HandSliceCount members).
	HandSlice       []float64 `json:"hand_slice_s,omitempty"`
	HandSliceInsert []float64 `json:"hand_slice_insert_s,omitempty"`
	HandSliceCount  int64     `json:"hand_slice_count,omitempty"`
}

// upTo is a hand-written query of a state kind over the members with ids up to hi (its
// MEMBER_ID_MAX; math.MaxInt64: every member).
func upTo(hand string, hi int64) string {
	return strings.ReplaceAll(hand, "MEMBER_ID_MAX", strconv.FormatInt(hi, 10))
}

func triggersCmd(args []string) error {
	fs := flag.NewFlagSet("triggers", flag.ExitOnError)
	url := fs.String("url", "", "database URL")
	tzName := fs.String("tz", "UTC", "REGULARS_TIMEZONE of the shop")
	repeats := fs.Int("repeats", 5, "alternated repeats of engine and hand-written query per kind")
	window := fs.Duration("window", eventWindow, "how far back event triggers look (the engine's overlap plus its interval)")
	only := fs.String("only", "", "measure only kinds whose name starts with one of these (comma-separated)")
	setup := fs.String("setup", "", "SQL to run before measuring (e.g. CREATE INDEX of a proposed fix); MEDIAN_GAP stands for the statement that makes bench_median_gap")
	teardown := fs.String("teardown", "", "SQL to run after measuring (e.g. DROP INDEX)")
	enterOnly := fs.String("enter-only", "", "kinds (name prefixes, comma-separated) whose ticks stop after the entry statement")
	handOnly := fs.String("hand-only", "", "kinds (name prefixes, comma-separated) measured without the engine: the hand-written query and its rewrites only")
	set := fs.String("set", "", "run-time settings of every connection, engine's and hand-written alike (e.g. jit=off)")
	explain := fs.String("explain", "", "directory for EXPLAIN (ANALYZE, BUFFERS) of the engine's entry statement and the hand-written query")
	_ = fs.Parse(args)
	ctx := context.Background()
	tz, err := time.LoadLocation(*tzName)
	if err != nil {
		return err
	}
	dbURL := *url
	if *set != "" {
		sep := "?"
		if strings.Contains(dbURL, "?") {
			sep = "&"
		}
		for _, kv := range strings.Split(*set, ",") {
			dbURL += sep + kv
			sep = "&"
		}
	}
	db, err := models.Open(ctx, dbURL, 4)
	if err != nil {
		return err
	}
	defer db.Close()
	db.Timezone = tz
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return err
	}
	cfg.MaxConns = 4
	tr := &tracer{times: map[string]time.Duration{}}
	cfg.ConnConfig.Tracer = tr
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer traced.Close()
	plain := db.Pool
	if *explain != "" {
		if err := os.MkdirAll(*explain, 0o755); err != nil {
			return err
		}
	}
	// Flows of an earlier, interrupted run go; other flows stay out of the ticks.
	for _, q := range []string{
		`DELETE FROM campaign_runs WHERE campaign_id IN (SELECT c.id FROM campaigns c JOIN flows f ON f.id = c.flow_id WHERE f.name LIKE 'bench %')`,
		`DELETE FROM flows WHERE name LIKE 'bench %'`,
		`UPDATE flows SET status = 'paused' WHERE status = 'active'`,
	} {
		if _, err := plain.Exec(ctx, q); err != nil {
			return err
		}
	}
	if *setup != "" {
		start := time.Now()
		sql := strings.ReplaceAll(strings.ReplaceAll(*setup, "MEDIAN_GAP", medianGapSetup), "$TZ", *tzName)
		for _, stmt := range strings.Split(sql, ";") {
			if _, err := plain.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("setup: %s: %w", stmt, err)
			}
		}
		logf("setup in %.1f s: %s", time.Since(start).Seconds(), *setup)
	}
	if *teardown != "" {
		defer func() {
			for _, stmt := range strings.Split(*teardown, ";") {
				if _, err := plain.Exec(context.Background(), stmt); err != nil {
					logf("teardown: %s: %v", stmt, err)
				}
			}
		}()
	}
	engine := &flows.Engine{DB: db, QuietStart: "00:00", QuietEnd: "00:00",
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	var results []measured
	for _, k := range kinds(*window, time.Now(), tz) {
		if *only != "" && !slices.ContainsFunc(strings.Split(*only, ","), func(p string) bool { return strings.HasPrefix(k.Name, p) }) {
			continue
		}
		k.EnterOnly = *enterOnly != "" && slices.ContainsFunc(strings.Split(*enterOnly, ","), func(p string) bool { return strings.HasPrefix(k.Name, p) })
		k.HandOnly = *handOnly != "" && slices.ContainsFunc(strings.Split(*handOnly, ","), func(p string) bool { return strings.HasPrefix(k.Name, p) })
		res, err := measureKind(ctx, db, plain, traced, tr, engine, k, *repeats, *tzName, *explain)
		if err != nil {
			return fmt.Errorf("%s: %w", k.Name, err)
		}
		results = append(results, res)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(results); err != nil {
		return err
	}
	fmt.Printf("\n%-24s %10s %10s %8s %12s %10s %10s %12s %10s %10s %10s\n", "kind", "enter s", "hand s", "ratio", "hand ins. s", "tick s", "entered", "hand count", "again s", "steady s", "exits s")
	for _, r := range results {
		fmt.Printf("%-24s %10.3f %10.3f %8.2f %12.3f %10.3f %10d %12d %10.3f %10.3f %10.3f\n", r.Kind, r.MedianEnter, r.MedianHand, r.Ratio,
			r.MedianHandInsert, r.MedianTick, r.Entered, r.HandCount, r.Again, r.Steady, r.FirstStmts["exit"])
		for name, s := range r.RewriteMedian {
			fmt.Printf("  rewrite %-30s %10.3f s, count %d\n", name, s, r.RewriteCount[name])
		}
		if n := len(r.ExitRound); n > 0 {
			fmt.Printf("  every member on the way (%d) checked for a reason to leave: %d ticks, exit statements %.3f s in all, longest %.3f s; longest tick %.3f s\n",
				r.SteadyActive, n, r.FullExit, slices.Max(r.ExitRound), r.FullExitTick)
		}
		if len(r.HandSlice) > 0 {
			fmt.Printf("  first slice by hand: count %.3f s, written as entries %.3f s (%d members; the engine's tick enters at most its cap)\n",
				median(r.HandSlice), median(r.HandSliceInsert), r.HandSliceCount)
		}
		if n := len(r.PassEnter); n > 0 {
			fmt.Printf("  first pass: %d ticks, %d entered; entry statement median %.3f s, max %.3f s, sum %.3f s (%.2fx the hand-written query); tick median %.3f s, max %.3f s\n",
				n, r.PassEntered, median(r.PassEnter), slices.Max(r.PassEnter), sum(r.PassEnter), r.PassRatio, median(r.PassTick), slices.Max(r.PassTick))
		}
	}
	return nil
}

// eventWindow is what a steady engine's event tick looks back over: the 5-minute overlap
// (flows.eventOverlap) and one interval.
const eventWindow = 5*time.Minute + flows.DefaultInterval

func measureKind(ctx context.Context, db *models.DB, plain, traced *pgxpool.Pool, tr *tracer, engine *flows.Engine,
	k kind, repeats int, tzName, explainDir string) (measured, error) {
	res := measured{Kind: k.Name}
	var rws []kind
	for _, rw := range rewrites[k.Name] {
		var ok bool
		if err := plain.QueryRow(ctx, `SELECT $1 = '' OR to_regclass($1) IS NOT NULL`, rw.Needs).Scan(&ok); err != nil {
			return res, err
		}
		if ok {
			rws = append(rws, rw)
		}
	}
	body := fmt.Sprintf(`{"name": %q, "trigger": %s, "steps": [{"wait": "24h"},
		{"mail": {"subject": "Hello {{.Member.FirstName}}", "html": "<p>Hello</p>", "text": "Hello"}}],
		"exit_on_purchase": true, "reentry_days": 180, "holdout_percent": 10}`, "bench "+k.Name, k.Trigger)
	in, err := flows.ParseInput([]byte(body))
	if err != nil {
		return res, err
	}
	f, err := flows.Create(ctx, db, "Club <club@bench.example>", in)
	if err != nil {
		return res, err
	}
	defer func() {
		ctx := context.Background()
		if _, err := plain.Exec(ctx, `DELETE FROM campaign_runs WHERE campaign_id IN (SELECT id FROM campaigns WHERE flow_id = $1)`, f.ID); err != nil {
			logf("delete runs of flow %d: %v", f.ID, err)
		}
		if _, err := plain.Exec(ctx, `DELETE FROM flows WHERE id = $1`, f.ID); err != nil {
			logf("delete flow %d: %v", f.ID, err)
		}
	}()
	if _, err := flows.Activate(ctx, db, f.ID); err != nil {
		return res, err
	}
	// The lower bound of event times: the window before the newest event.
	var from time.Time
	switch k.Events {
	case "transactions":
		err = plain.QueryRow(ctx, `SELECT max(received_at) - $1::interval FROM transactions WHERE live AND member_id IS NOT NULL`, k.Window).Scan(&from)
	case "members":
		err = plain.QueryRow(ctx, `SELECT max(confirmed_at) - $1::interval FROM members WHERE confirmed_at IS NOT NULL`, k.Window).Scan(&from)
	default:
		err = plain.QueryRow(ctx, `SELECT now()`).Scan(&from)
	}
	if err != nil {
		return res, err
	}
	reset := func() error {
		if _, err := plain.Exec(ctx, `DELETE FROM flow_entries WHERE flow_id = $1`, f.ID); err != nil {
			return err
		}
		if _, err := plain.Exec(ctx, `VACUUM flow_entries`); err != nil {
			return err
		}
		// The engine looks from greatest(activated_at, events_checked_until − 5 min). The exits
		// of everyone on the way are checked every StateEvery, not in these ticks (measured
		// on their own below).
		_, err := plain.Exec(ctx, `UPDATE flows SET activated_at = $2, events_checked_until = $2::timestamptz + interval '5 minutes',
			states_checked_at = NULL, state_cursor = NULL, exits_checked_at = now(), exits_cursor = NULL, exits_since = now()
			WHERE id = $1`, f.ID, from)
		return err
	}
	db.Pool = traced
	tick := func() (float64, map[string]time.Duration, error) {
		tr.reset()
		start := time.Now()
		err := engine.Tick(ctx)
		return time.Since(start).Seconds(), tr.reset(), err
	}
	defer func() { db.Pool = plain }()
	handArgs := append([]any{from, tzName}, k.Args...)
	hand := func(q string, args []any) (float64, int64, error) {
		start := time.Now()
		var n int64
		err := plain.QueryRow(ctx, `SELECT count(*) FROM (`+q+`) h`, args...).Scan(&n)
		return time.Since(start).Seconds(), n, err
	}
	// handInsert writes the hand-written query's members as entries, in a transaction rolled back.
	handInsert := func(q string, args []any) (float64, error) {
		tx, err := plain.Begin(ctx)
		if err != nil {
			return 0, err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		start := time.Now()
		_, err = tx.Exec(ctx, `INSERT INTO flow_entries (flow_id, member_id, event_key, held_out)
			SELECT `+fmt.Sprint(f.ID)+`, h.member_id, 'hand', false FROM (`+q+`) h`, args...)
		return time.Since(start).Seconds(), err
	}
	res.RewriteMedian, res.RewriteCount = map[string]float64{}, map[string]int64{}
	rewriteTimes := map[string][]float64{}
	var firstEnter started // the first tick's entry statement, replayed by the later repeats
	for r := range repeats {
		if err := reset(); err != nil {
			return res, err
		}
		runEngine := func() error {
			if k.EnterOnly {
				// A real tick stopped right after its entry statement (the context ends, the
				// transaction rolls back): exits and advance of a large first entry take
				// minutes and are not what is measured here.
				tctx, cancel := context.WithCancel(ctx)
				defer cancel()
				var entered int64
				tr.mu.Lock()
				tr.afterEnter = func(n int64) { entered = n; cancel() }
				tr.mu.Unlock()
				tr.reset()
				err := engine.Tick(tctx)
				stmts := tr.reset()
				tr.mu.Lock()
				tr.afterEnter = nil
				tr.mu.Unlock()
				if err == nil || stmts["enter"] == 0 {
					return fmt.Errorf("tick stopped after its entry statement: %v", err)
				}
				res.EngineEnter = append(res.EngineEnter, stmts["enter"].Seconds())
				res.Entered = entered
				if r == 0 {
					tr.mu.Lock()
					firstEnter = tr.last["enter"]
					tr.mu.Unlock()
				}
				if r == 0 && k.Events == "" {
					// The next evaluation with everyone in: the statement twice in one transaction.
					tr.mu.Lock()
					enter := tr.last["enter"]
					tr.mu.Unlock()
					if res.Again, _, err = replayEnter(ctx, plain, enter, true); err != nil {
						return err
					}
					logf("%s: again %.3f s", k.Name, res.Again)
				}
				return nil
			}
			if r > 0 {
				// The entry statement of the first tick, verbatim, in a transaction rolled back.
				secs, n, err := replayEnter(ctx, plain, firstEnter, false)
				res.EngineEnter = append(res.EngineEnter, secs)
				res.Entered = n
				return err
			}
			secs, stmts, err := tick()
			if err != nil {
				return err
			}
			res.EngineTick = append(res.EngineTick, secs)
			res.EngineEnter = append(res.EngineEnter, stmts["enter"].Seconds())
			res.FirstStmts = seconds(stmts)
			tr.mu.Lock()
			firstEnter = tr.last["enter"]
			tr.mu.Unlock()
			if err := plain.QueryRow(ctx, `SELECT count(*) FROM flow_entries WHERE flow_id = $1`, f.ID).Scan(&res.Entered); err != nil {
				return err
			}
			if k.Events == "" && r == 0 {
				if err := walkPass(ctx, plain, f.ID, tick, &res); err != nil {
					return err
				}
			}
			// Everyone is in now: a state trigger's next evaluation (10 minutes later), then a
			// tick with nothing due.
			if k.Events == "" {
				if res.Again, _, err = replayEnter(ctx, plain, firstEnter, false); err != nil {
					return err
				}
			}
			secs, stmts, err = tick()
			if err != nil {
				return err
			}
			res.Steady, res.SteadyStmts = secs, seconds(stmts)
			if err := plain.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'active') FROM flow_entries WHERE flow_id = $1`, f.ID).Scan(&res.SteadyActive); err != nil {
				return err
			}
			// A round of the ticks that check every member on the way for a reason to leave (a
			// round every StateEvery), with everyone the first pass entered.
			if _, err := plain.Exec(ctx, `UPDATE flows SET exits_checked_at = now() - interval '1 hour' WHERE id = $1`, f.ID); err != nil {
				return err
			}
			for range 1000 {
				if secs, stmts, err = tick(); err != nil {
					return err
				}
				res.ExitRound = append(res.ExitRound, stmts["exit"].Seconds())
				res.FullExitTick = max(res.FullExitTick, secs)
				var done bool
				if err := plain.QueryRow(ctx, `SELECT exits_cursor IS NULL FROM flows WHERE id = $1`, f.ID).Scan(&done); err != nil {
					return err
				}
				if done {
					break
				}
			}
			res.FullExit = sum(res.ExitRound)
			logf("%s: first tick %.3f s %v; again %.3f s, steady tick %.3f s with %d active entries %v; a round of exits %d ticks, %.3f s in all, longest tick %.3f s", k.Name, res.EngineTick[0], res.FirstStmts,
				res.Again, res.Steady, res.SteadyActive, res.SteadyStmts, len(res.ExitRound), res.FullExit, res.FullExitTick)
			return nil
		}
		runHand := func() error {
			secs, n, err := hand(upTo(k.Hand, math.MaxInt64), handArgs)
			if err != nil {
				return err
			}
			res.Hand = append(res.Hand, secs)
			res.HandCount = n
			if k.Events == "" && !k.HandOnly {
				// The same condition over the engine's first slice only (the members up to
				// the StateSlice-th): what one tick of the engine does, written by hand, counted
				// and written as entries (all of the slice's, where the engine stops at its cap).
				var hi int64
				if err := plain.QueryRow(ctx, `SELECT coalesce((SELECT id FROM members ORDER BY id OFFSET $1 - 1 LIMIT 1), 9223372036854775807)`,
					engine.SliceSize()).Scan(&hi); err != nil {
					return err
				}
				sliced := upTo(k.Hand, hi)
				secs, n, err := hand(sliced, handArgs)
				if err != nil {
					return fmt.Errorf("hand slice: %w", err)
				}
				res.HandSlice, res.HandSliceCount = append(res.HandSlice, secs), n
				if secs, err = handInsert(sliced, handArgs); err != nil {
					return fmt.Errorf("hand slice insert: %w", err)
				}
				res.HandSliceInsert = append(res.HandSliceInsert, secs)
			}
			if r == repeats-1 && !k.HandOnly { // once: it writes as many rows as the engine
				if secs, err = handInsert(upTo(k.Hand, math.MaxInt64), handArgs); err != nil {
					return fmt.Errorf("hand insert: %w", err)
				}
				res.HandInsert = append(res.HandInsert, secs)
			}
			for _, rw := range rws {
				secs, n, err := hand(upTo(rw.Hand, math.MaxInt64), append([]any{from, tzName}, rw.Args...))
				if err != nil {
					return fmt.Errorf("rewrite %s: %w", rw.Name, err)
				}
				rewriteTimes[rw.Name] = append(rewriteTimes[rw.Name], secs)
				res.RewriteCount[rw.Name] = n
			}
			return nil
		}
		first, second := runEngine, runHand
		if r%2 == 1 {
			first, second = runHand, runEngine
		}
		if k.HandOnly {
			first, second = runHand, func() error { return nil }
		}
		if err := first(); err != nil {
			return res, err
		}
		if err := second(); err != nil {
			return res, err
		}
		logf("%s, repeat %d: tick %v s (enter %v s, %d entered), hand %v s (%d), hand insert %v s, rewrites %v", k.Name, r+1,
			lastOf(res.EngineTick), lastOf(res.EngineEnter), res.Entered, lastOf(res.Hand), res.HandCount, lastOf(res.HandInsert), rewriteTimes)
	}
	if k.HandOnly {
		for name, ts := range rewriteTimes {
			res.RewriteMedian[name] = median(ts)
		}
		res.MedianHand = median(res.Hand)
		return res, nil
	}
	res.MedianEnter, res.MedianTick, res.MedianHand = median(res.EngineEnter), median(res.EngineTick), median(res.Hand)
	res.MedianHandInsert = median(res.HandInsert)
	res.Ratio = res.MedianEnter / res.MedianHand
	if len(res.PassEnter) > 0 {
		res.PassRatio = sum(res.PassEnter) / res.MedianHand
	}
	for name, ts := range rewriteTimes {
		res.RewriteMedian[name] = median(ts)
	}
	if explainDir != "" {
		if err := reset(); err != nil {
			return res, err
		}
		if err := explainAll(ctx, plain, firstEnter, explainDir, k, rws, handArgs); err != nil {
			return res, err
		}
	}
	return res, nil
}

// walkPass goes on ticking after a state trigger's first tick until its pass over the club ends
// (states_checked_at set, no state_cursor), recording each tick (the first included).
func walkPass(ctx context.Context, plain *pgxpool.Pool, flowID int64, tick func() (float64, map[string]time.Duration, error), res *measured) error {
	res.PassEnter = []float64{res.EngineEnter[len(res.EngineEnter)-1]}
	res.PassTick = []float64{res.EngineTick[len(res.EngineTick)-1]}
	for range 1000 {
		var ended bool
		if err := plain.QueryRow(ctx, `SELECT states_checked_at IS NOT NULL AND state_cursor IS NULL FROM flows WHERE id = $1`, flowID).Scan(&ended); err != nil {
			return err
		}
		if ended {
			return plain.QueryRow(ctx, `SELECT count(*) FROM flow_entries WHERE flow_id = $1`, flowID).Scan(&res.PassEntered)
		}
		secs, stmts, err := tick()
		if err != nil {
			return err
		}
		res.PassEnter = append(res.PassEnter, stmts["enter"].Seconds())
		res.PassTick = append(res.PassTick, secs)
		logf("%s: pass tick %d: %.3f s, enter %.3f s", res.Kind, len(res.PassTick), secs, stmts["enter"].Seconds())
	}
	return fmt.Errorf("the pass did not end in 1000 ticks")
}

func sum(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
}

// explainAll writes EXPLAIN (ANALYZE, BUFFERS) of the engine's entry statement of a first tick
// (in a transaction rolled back; a state trigger's first slice), of the hand-written query and
// of its rewrites.
func explainAll(ctx context.Context, pool *pgxpool.Pool, enter started, dir string, k kind, rws []kind, handArgs []any) error {
	name := fileName(k.Name)
	write := func(file, sql string, args []any) error {
		return explainOne(ctx, pool, filepath.Join(dir, file), sql, args)
	}
	if err := write(name+".engine.txt", enter.sql, enter.args); err != nil {
		return err
	}
	if err := write(name+".hand.txt", `SELECT count(*) FROM (`+upTo(k.Hand, math.MaxInt64)+`) h`, handArgs); err != nil {
		return err
	}
	for _, rw := range rws {
		if err := write(name+".rewrite."+rw.Name+".txt", `SELECT count(*) FROM (`+upTo(rw.Hand, math.MaxInt64)+`) h`, append(slices.Clone(handArgs[:2]), rw.Args...)); err != nil {
			return err
		}
	}
	return nil
}

func seconds(m map[string]time.Duration) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		out[k] = v.Seconds()
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fileName(kind string) string {
	return strings.NewReplacer(" ", "_", ",", "", "×", "x", ".", "").Replace(kind)
}

// explainOne writes EXPLAIN (ANALYZE, BUFFERS) of sql into file, in a transaction rolled back.
func explainOne(ctx context.Context, pool *pgxpool.Pool, file, sql string, args []any) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
	if err != nil {
		return fmt.Errorf("explain %s: %w", file, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("explain %s: %w", file, err)
	}
	return os.WriteFile(file, []byte(sql+"\n\n"+strings.Join(lines, "\n")+"\n"), 0o644)
}

// lastOf is the last of xs rounded to milliseconds, or nil.
func lastOf(xs []float64) any {
	if len(xs) == 0 {
		return nil
	}
	return float64(int64(xs[len(xs)-1]*1000+0.5)) / 1000
}

// replayEnter runs an entry statement the tracer saw, with its arguments, in a transaction
// rolled back: its time and the entries it would have made.
// With twice, it runs it first untimed and times the second run (everyone in already).
func replayEnter(ctx context.Context, pool *pgxpool.Pool, enter started, twice bool) (float64, int64, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if twice {
		if _, err := tx.Exec(ctx, enter.sql, enter.args...); err != nil {
			return 0, 0, err
		}
	}
	start := time.Now()
	tag, err := tx.Exec(ctx, enter.sql, enter.args...)
	return time.Since(start).Seconds(), tag.RowsAffected(), err
}
