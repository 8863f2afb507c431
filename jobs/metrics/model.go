package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/jobs/clv"
	"github.com/regulars/regulars/models"
)

// The model step of a run (docs/metrics.md, "Model-based figures"). PostgreSQL summarises every
// member's purchase history before A in one set-based statement into a temporary table; Go
// reads it back only as groups (identical (x, t_x, T), and identical (x, m) for spend), fits
// BG/NBD and Gamma-Gamma through jobs/clv, evaluates each group once, and copies the group
// results back; SQL then maps them to members straight into the next member_metrics
// (writeMemberMetrics, store.go), which the segment statement averages (metrics.go).
// Everything runs in the run's transaction, so a snapshot is still all or nothing.

// minorPerMajor converts minor to major currency units. The models are fitted in major units
// (as the contract says), assuming a currency with two decimals (NOK, SEK, DKK, EUR, …). The
// assumption only affects the unit of the reported Gamma-Gamma γ: the model is
// scale-equivariant, so expected spend converted back to minor units does not depend on it.
const minorPerMajor = 100

// sortMemory is work_mem for the run's statements that sort or group a row per member (the
// member summary, the RFM ranks, the model's groups, the member figures): at the default 4 MB
// each sorts on disk at 1M members. Set per statement (withSettings), not for the run, so that
// the segment statement's many sort and hash nodes cannot each take this much (its hash joins
// write 350 MB of batches at 1M members, which the page cache keeps: 64 MB did not make it
// faster; docs/benchmarks.md, "Session 6").
const sortMemory = "64MB"

// summarySQL creates metrics_summary, the per-member summary: one row per member with a
// transaction before A. frequency, recency_days, t_days, monetary_minor and last_day are NULL
// for a member whose transactions before A are all refunds; monetary_minor is also NULL with no
// repeat day. m_major is the mean value the spend model sees: monetary in major units, floored
// at 0, and 0 without a repeat day (float8, so the group keys Go reads come back bit for bit).
// No index: every reader joins it by hash or scans it whole.
//
// CREATE TABLE … AS rather than INSERT … SELECT, because only the former may be planned in
// parallel: when too few of the transactions' pages are all-visible for reading the index alone
// (computeModels), the planner scans and sorts the table, and workers share that. The casts
// give each column the type its readers expect.
//
// Parameters: $1 time zone name, $2 A (instant), $3 A's date,
// $4 the date A−W, $5 the date A−2P, $6 the date A−P. orders_window, spend_window and
// sold_before_window are RFM's (rfm.go) and the segment statement's (metrics.go): sales and net
// amount on the dates of the window [A−W, A), and whether the member bought before it;
// bought_before and bought_recently are the churn periods' (a sale in [A−2P, A−P), in [A−P, A)).
// Each bound is the start of a local day, so "on a date from X on" is "at or after X".
// A day is a calendar date in the time zone; a purchase day is one with at least one sale; its
// net amount is that day's sales minus that day's refunds. A is the start of its date in the
// zone, so "before A" is exactly "on a local date before A's date", and A−365 days is the date
// 365 days before.
var summarySQL = `
CREATE TEMP TABLE metrics_summary ON COMMIT DROP AS
WITH days AS (
    SELECT t.member_id,
           (t.occurred_at AT TIME ZONE $1::text)::date AS day,
           count(*) FILTER (WHERE t.kind = 'sale') AS sales_n,
           sum(net_amount(t.kind, t.amount_minor)) AS net
    FROM transactions t
    WHERE t.member_id IS NOT NULL AND t.occurred_at < $2
    GROUP BY 1, 2
),
marked AS (
    -- Days since the previous purchase day, on a purchase day (the personal lapse's gap). It is
    -- NULL on exactly one purchase day, the first, so "a purchase day after the first" is "a
    -- day with a gap": one window pass, where the first purchase day used to take another
    -- (docs/benchmarks.md, "The nightly job at 1M").
    SELECT d.*,
           CASE WHEN d.sales_n > 0 THEN d.day - max(d.day) FILTER (WHERE d.sales_n > 0)
                OVER (PARTITION BY d.member_id ORDER BY d.day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) END AS gap
    FROM days d
),
per_member AS (
    SELECT m.member_id,
           NULLIF(count(*) FILTER (WHERE m.sales_n > 0), 0) - 1 AS frequency,
           max(m.day) FILTER (WHERE m.sales_n > 0) - min(m.day) FILTER (WHERE m.sales_n > 0) AS recency_days,
           $3::date - min(m.day) FILTER (WHERE m.sales_n > 0) AS t_days,
           avg(m.net) FILTER (WHERE m.gap IS NOT NULL) AS monetary_minor,
           max(m.day) FILTER (WHERE m.sales_n > 0) AS last_day,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY m.gap) FILTER (WHERE m.gap IS NOT NULL) AS median_gap,
           coalesce(sum(m.sales_n) FILTER (WHERE m.day >= $3::date - 365), 0) AS orders_365d,
           coalesce(sum(m.net) FILTER (WHERE m.day >= $3::date - 365), 0) AS spend_365d,
           coalesce(sum(m.sales_n) FILTER (WHERE m.day >= $4::date), 0) AS orders_window,
           coalesce(sum(m.net) FILTER (WHERE m.day >= $4::date), 0) AS spend_window,
           coalesce(bool_or(m.sales_n > 0 AND m.day < $4::date), false) AS sold_before_window,
           coalesce(bool_or(m.sales_n > 0 AND m.day >= $5::date AND m.day < $6::date), false) AS bought_before,
           coalesce(bool_or(m.sales_n > 0 AND m.day >= $6::date), false) AS bought_recently
    FROM marked m
    GROUP BY m.member_id
)
SELECT p.member_id::bigint AS member_id, p.frequency::int AS frequency, p.recency_days::int AS recency_days,
       p.t_days::int AS t_days, p.monetary_minor::numeric AS monetary_minor,
       CASE WHEN p.frequency IS NOT NULL
            THEN (greatest(coalesce(p.monetary_minor, 0), 0) / ` + strconv.Itoa(minorPerMajor) + `)::float8 END AS m_major,
       p.last_day::date AS last_day, p.median_gap::float8 AS median_gap,
       p.orders_365d::int AS orders_365d, p.spend_365d::bigint AS spend_365d,
       p.orders_window::int AS orders_window, p.spend_window::numeric AS spend_window,
       p.sold_before_window, p.bought_before, p.bought_recently
FROM per_member p`

// modelFit is one row of metric_models.
type modelFit struct {
	model         string
	params        any // nil when the fit failed
	logLikelihood *float64
	sampleSize    int
	groups        int
	converged     bool
	gradientNorm  *float64
	note          string
}

// bgnbdParams and gammaGammaParams are the JSON forms of the fitted parameters.
type bgnbdParams struct {
	R     float64 `json:"r"`
	Alpha float64 `json:"alpha"`
	A     float64 `json:"a"`
	B     float64 `json:"b"`
}

type gammaGammaParams struct {
	P     float64 `json:"p"`
	Q     float64 `json:"q"`
	Gamma float64 `json:"gamma"`
}

// computeModels is the model step of run runID; see the comment at the top of this file.
// Only database errors fail the run: a fit that is not identified, fails or does not converge
// is recorded in metric_models with its reason, and its figures stay NULL.
func computeModels(ctx context.Context, tx pgx.Tx, opts Options, b bounds, runID int64) error {
	tz := opts.Timezone.String()
	date := b.asOf.Format(time.DateOnly)
	if _, err := tx.Exec(ctx, `UPDATE metric_runs SET horizon_days = $2, monthly_discount_rate = $3 WHERE id = $1`,
		runID, opts.HorizonDays, *opts.MonthlyDiscountRate); err != nil {
		return fmt.Errorf("record model settings: %w", err)
	}
	// The summary reads every member transaction before A in (member, day) order. Since
	// migration 00030 transactions_member holds each transaction's kind and amount, so the
	// planner reads them in (member, time) order from the index alone and sorts each member's
	// few rows by day (an incremental sort, in memory): at 1M members 11–12.5 s in one
	// process where a sequential scan and a sort of 7.5M rows on disk took 12–15 s in three
	// (two parallel workers), so with less CPU (docs/benchmarks.md, "Session 6"). Rows on pages
	// written since the table's last VACUUM are read from the heap too (vacuumTransactions,
	// before the run, keeps those pages few); with too few pages all-visible the planner falls
	// back to the scan and the sort, which 64 MB of work_mem keeps bounded.
	err := withSettings(ctx, tx, map[string]string{"work_mem": sortMemory},
		func() error {
			_, err := tx.Exec(ctx, summarySQL, tz, b.asOf, date, b.windowStart.Format(time.DateOnly),
				b.churnStart.Format(time.DateOnly), b.churnMid.Format(time.DateOnly))
			return err
		})
	if err != nil {
		return fmt.Errorf("summarise members: %w", err)
	}
	// Statistics for every temporary table the run joins (autovacuum never analyses them):
	// without them the planner guesses joins of 1M members that multiply rows and merges them
	// after sorting each side (docs/benchmarks.md, "The nightly job at 1M").
	if err := analyze(ctx, tx, "metrics_summary"); err != nil {
		return err
	}

	var groups []clv.Group
	var pairs []clv.SpendGroup
	if err := withSettings(ctx, tx, map[string]string{"work_mem": sortMemory}, func() (err error) {
		if groups, err = readGroups(ctx, tx); err != nil {
			return err
		}
		pairs, err = readSpendPairs(ctx, tx)
		return err
	}); err != nil {
		return err
	}
	bgStart, ggStart, err := previousFits(ctx, tx)
	if err != nil {
		return err
	}
	bg, bgRow := fitBGNBD(groups, bgStart)
	gg, ggRow := fitGammaGamma(pairs, ggStart)
	for _, row := range []modelFit{bgRow, ggRow} {
		var params []byte
		if row.params != nil {
			if params, err = json.Marshal(row.params); err != nil {
				return fmt.Errorf("encode %s parameters: %w", row.model, err)
			}
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO metric_models (run_id, model, params, log_likelihood, sample_size, groups, converged, gradient_norm, note)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			runID, row.model, params, row.logLikelihood, row.sampleSize, row.groups, row.converged,
			row.gradientNorm, row.note); err != nil {
			return fmt.Errorf("record %s fit: %w", row.model, err)
		}
	}

	for _, ddl := range []string{`
		CREATE TEMP TABLE metrics_group_predictions (
		    frequency int, recency_days int, t_days int,
		    p_alive float8, expected_purchases float8, clv_per_spend float8
		) ON COMMIT DROP`, `
		CREATE TEMP TABLE metrics_spend_predictions (
		    frequency int, m_major float8, expected_spend float8
		) ON COMMIT DROP`} {
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return fmt.Errorf("create prediction tables: %w", err)
		}
	}
	if bg != nil {
		rows := predictGroups(*bg, groups, float64(opts.HorizonDays), *opts.MonthlyDiscountRate)
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"metrics_group_predictions"},
			[]string{"frequency", "recency_days", "t_days", "p_alive", "expected_purchases", "clv_per_spend"},
			pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy group predictions: %w", err)
		}
	}
	if gg != nil {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"metrics_spend_predictions"},
			[]string{"frequency", "m_major", "expected_spend"},
			pgx.CopyFromRows(predictSpend(*gg, pairs))); err != nil {
			return fmt.Errorf("copy spend predictions: %w", err)
		}
	}

	return analyze(ctx, tx, "metrics_group_predictions", "metrics_spend_predictions")
}

// vacuumTransactions marks the pages of transactions written since the table's last VACUUM
// all-visible, before the run's transaction starts (VACUUM cannot run inside one), so that the
// member summary reads transactions_member alone instead of fetching those pages' rows from
// the table: with a fifth of the pages not all-visible (autovacuum waits for 20% of the table
// in new rows: 2M at 10M transactions) the summary fetched 1.55M rows and took 20.6 s instead
// of 11.5 s at 1M members (docs/benchmarks.md, "Session 6"). It reads only the pages changed
// since, a night's sales on a nightly run. SKIP_LOCKED: when autovacuum (or another VACUUM)
// holds the table it is doing this already, and the run does not wait for it. A database role
// that does not own the table gets a warning, not an error, and the summary reads the heap.
func vacuumTransactions(ctx context.Context, db *models.DB) error {
	if _, err := db.Pool.Exec(ctx, `VACUUM (SKIP_LOCKED) transactions`); err != nil {
		return fmt.Errorf("vacuum transactions: %w", err)
	}
	return nil
}

// analyze gathers statistics on the run's temporary tables (trusted names written in this
// package).
func analyze(ctx context.Context, tx pgx.Tx, tables ...string) error {
	for _, t := range tables {
		if _, err := tx.Exec(ctx, `ANALYZE `+t); err != nil {
			return fmt.Errorf("analyze %s: %w", t, err)
		}
	}
	return nil
}

// readGroups reads the BG/NBD input: members with a purchase before A grouped by (x, t_x, T).
func readGroups(ctx context.Context, tx pgx.Tx) ([]clv.Group, error) {
	rows, err := tx.Query(ctx, `
		SELECT frequency, recency_days, t_days, count(*)
		FROM metrics_summary WHERE frequency IS NOT NULL
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("read summary groups: %w", err)
	}
	groups, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (clv.Group, error) {
		var x, tx, age int
		var n int64
		err := row.Scan(&x, &tx, &age, &n)
		return clv.Group{Customer: clv.Customer{Frequency: x, Recency: float64(tx), T: float64(age)}, Count: int(n)}, err
	})
	if err != nil {
		return nil, fmt.Errorf("read summary groups: %w", err)
	}
	return groups, nil
}

// readSpendPairs reads every distinct (x, m) of the members with a purchase before A, with
// counts; the Gamma-Gamma fit takes those with x ≥ 1 and m > 0, predictions need them all.
func readSpendPairs(ctx context.Context, tx pgx.Tx) ([]clv.SpendGroup, error) {
	rows, err := tx.Query(ctx, `
		SELECT frequency, m_major, count(*)
		FROM metrics_summary WHERE frequency IS NOT NULL
		GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("read spend groups: %w", err)
	}
	pairs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (clv.SpendGroup, error) {
		var g clv.SpendGroup
		var n int64
		err := row.Scan(&g.Frequency, &g.MeanValue, &n)
		g.Count = int(n)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("read spend groups: %w", err)
	}
	return pairs, nil
}

// previousFits returns the parameters of the latest converged fit of each model (nil when
// there is none), which the fits start from: the data change by a day from one night to the
// next, so the maximum has barely moved, and a start there saves most of the optimiser's steps
// (clv.FitBGNBDFrom; the result is the same maximum within the fit's tolerance).
func previousFits(ctx context.Context, tx pgx.Tx) (*clv.BGNBDParams, *clv.GammaGammaParams, error) {
	var bgJSON, ggJSON []byte
	err := tx.QueryRow(ctx, `
		SELECT (SELECT params FROM metric_models WHERE model = 'bgnbd' AND converged AND params IS NOT NULL
		        ORDER BY run_id DESC LIMIT 1),
		       (SELECT params FROM metric_models WHERE model = 'gamma_gamma' AND converged AND params IS NOT NULL
		        ORDER BY run_id DESC LIMIT 1)`).Scan(&bgJSON, &ggJSON)
	if err != nil {
		return nil, nil, fmt.Errorf("read previous fits: %w", err)
	}
	var bg *clv.BGNBDParams
	var p bgnbdParams
	if bgJSON != nil && json.Unmarshal(bgJSON, &p) == nil {
		bg = &clv.BGNBDParams{R: p.R, Alpha: p.Alpha, A: p.A, B: p.B}
	}
	var gg *clv.GammaGammaParams
	var q gammaGammaParams
	if ggJSON != nil && json.Unmarshal(ggJSON, &q) == nil {
		gg = &clv.GammaGammaParams{P: q.P, Q: q.Q, Gamma: q.Gamma}
	}
	return bg, gg, nil
}

// fitBGNBD fits BG/NBD from start (nil: the default start) and returns the parameters to
// predict with (nil unless the fit converged) and the row that records the fit.
func fitBGNBD(groups []clv.Group, start *clv.BGNBDParams) (*clv.BGNBDParams, modelFit) {
	row := modelFit{model: "bgnbd", groups: len(groups)}
	for _, g := range groups {
		row.sampleSize += g.Count
	}
	if len(groups) == 0 {
		row.note = "no member has a purchase before the as-of date"
		return nil, row
	}
	fit, err := clv.FitBGNBDFrom(groups, start)
	switch {
	case errors.Is(err, clv.ErrNotIdentified):
		row.note = "not identified: " + err.Error()
		return nil, row
	case err != nil:
		row.note = "fit failed: " + err.Error()
		return nil, row
	}
	row.params = bgnbdParams{R: fit.Params.R, Alpha: fit.Params.Alpha, A: fit.Params.A, B: fit.Params.B}
	row.logLikelihood, row.gradientNorm = &fit.LogLikelihood, &fit.GradientNorm
	row.converged = fit.Converged
	if !fit.Converged {
		row.note = fmt.Sprintf("did not converge (%s, gradient norm %g); not used", fit.Status, fit.GradientNorm)
		return nil, row
	}
	return &fit.Params, row
}

// fitGammaGamma fits Gamma-Gamma from start (nil: the default start) on the pairs with x ≥ 1
// and m > 0 (members whose refunds brought their repeat days to zero or below are left out of
// the fit, the model needs m > 0).
func fitGammaGamma(pairs []clv.SpendGroup, start *clv.GammaGammaParams) (*clv.GammaGammaParams, modelFit) {
	row := modelFit{model: "gamma_gamma"}
	var fitPairs []clv.SpendGroup
	for _, p := range pairs {
		if p.Frequency >= 1 && p.MeanValue > 0 {
			fitPairs = append(fitPairs, p)
			row.sampleSize += p.Count
		}
	}
	row.groups = len(fitPairs)
	if len(fitPairs) == 0 {
		row.note = "no member has a repeat purchase day with a positive net amount"
		return nil, row
	}
	fit, err := clv.FitGammaGammaFrom(fitPairs, start)
	if err != nil {
		row.note = "fit failed: " + err.Error()
		return nil, row
	}
	row.params = gammaGammaParams{P: fit.Params.P, Q: fit.Params.Q, Gamma: fit.Params.Gamma}
	row.logLikelihood, row.gradientNorm = &fit.LogLikelihood, &fit.GradientNorm
	row.converged = fit.Converged
	if !fit.Converged {
		row.note = fmt.Sprintf("did not converge (%s, gradient norm %g); not used", fit.Status, fit.GradientNorm)
		return nil, row
	}
	return &fit.Params, row
}

// predictGroups evaluates each (x, t_x, T) group once: P(alive), E[Y(H)] and the discounted CLV
// per unit of spend (clv.CLV is linear in the spend, so SQL multiplies by each member's
// expected spend). A figure the model cannot give for a group (not finite) is NULL. The groups
// are split over GOMAXPROCS goroutines: at 1M members there are ~560,000 groups and some
// fourteen hypergeometric evaluations each, seconds of CPU on one core. Each goroutine writes
// only its own rows, so the result does not depend on the split.
func predictGroups(p clv.BGNBDParams, groups []clv.Group, horizon, discount float64) [][]any {
	rows := make([][]any, len(groups))
	workers := min(runtime.GOMAXPROCS(0), len(groups)/1000+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func(from, to int) {
			defer wg.Done()
			for i := from; i < to; i++ {
				g := groups[i]
				row := []any{g.Frequency, int(g.Recency), int(g.T), nil, nil, nil}
				if v, err := p.PAlive(g.Customer); err == nil {
					row[3] = v
				}
				if v, err := p.ExpectedPurchases(g.Customer, horizon); err == nil {
					row[4] = v
				}
				if v, err := clv.CLV(p, g.Customer, 1, horizon, discount); err == nil {
					row[5] = v
				}
				rows[i] = row
			}
		}(w*len(groups)/workers, (w+1)*len(groups)/workers)
	}
	wg.Wait()
	return rows
}

// predictSpend evaluates the expected spend per purchase (major units) for each (x, m), NULL
// where Gamma-Gamma gives none (x = 0 with q ≤ 1: the population mean does not exist).
func predictSpend(p clv.GammaGammaParams, pairs []clv.SpendGroup) [][]any {
	rows := make([][]any, 0, len(pairs))
	for _, g := range pairs {
		row := []any{g.Frequency, g.MeanValue, nil}
		if v, err := p.ExpectedSpend(g.Frequency, g.MeanValue); err == nil {
			row[2] = v
		}
		rows = append(rows, row)
	}
	return rows
}

// withSettings runs fn with PostgreSQL settings changed for tx, then puts the previous values
// back, so that one statement's plan hints do not leak into the rest of the run.
func withSettings(ctx context.Context, tx pgx.Tx, settings map[string]string, fn func() error) error {
	previous := map[string]string{}
	for name, value := range settings {
		var was string
		if err := tx.QueryRow(ctx, `SELECT current_setting($1), set_config($1, $2, true)`, name, value).Scan(&was, new(string)); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
		previous[name] = was
	}
	fnErr := fn()
	if fnErr != nil {
		return fnErr // the transaction is aborted; its end drops the settings
	}
	for name, was := range previous {
		if _, err := tx.Exec(ctx, `SELECT set_config($1, $2, true)`, name, was); err != nil {
			return fmt.Errorf("restore %s: %w", name, err)
		}
	}
	return nil
}
