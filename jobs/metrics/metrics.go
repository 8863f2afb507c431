// Package metrics computes the historic segment metrics of the contract ("Metric definitions"):
// customers, repeat-purchase rate, orders, net revenue, AOV, purchase frequency, churn rate,
// lifespan and historic CLV for every segment, as one dated snapshot per run. The aggregation is
// set-based SQL in PostgreSQL; Go only computes the period bounds and reads the results back.
// The model-based figures (jobs/clv: BG/NBD and Gamma-Gamma) are fitted in the same run and
// filled into the same rows, and kept per member in member_metrics (model.go).
package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models"
)

// Defaults of the contract.
const (
	DefaultWindowDays       = 365
	DefaultChurnPeriodDays  = 90
	DefaultLifespanCapYears = 10.0
	// DefaultHorizonDays is H, the horizon of the model-based predictions.
	DefaultHorizonDays = 365
	// DefaultMonthlyDiscountRate discounts clv_predicted by 1 % a month (about 12.7 % a
	// year), the rate lifetimes' examples use; see docs/metrics.md.
	DefaultMonthlyDiscountRate = 0.01
)

// LockKey is the transaction-level advisory lock that lets one metrics run at a time across
// every replica sharing the database ("regulars metrics" as a number; any fixed value will do,
// as long as no other part of Regulars uses it). Exported so that tests can hold it.
const LockKey int64 = 0x7267_6c72_6d65_7472

// Options configure one run. Zero values take the contract's defaults.
type Options struct {
	// AsOf is the as-of date: its year, month and day as written (its clock and location are
	// ignored). Zero means today in Timezone by the database's clock.
	AsOf time.Time
	// Timezone is REGULARS_TIMEZONE: the as-of instant A is the start of AsOf there, the period
	// bounds are calendar days there, and cohorts are quarters there. Nil means UTC. It must be
	// a named IANA zone (not time.Local), since PostgreSQL reads it too.
	Timezone *time.Location
	// WindowDays is W, the window of the purchase metrics (default 365).
	WindowDays int
	// ChurnPeriodDays is P, the churn period (default 90).
	ChurnPeriodDays int
	// LifespanCapYears caps lifespan_years, also when churn is zero (default 10).
	LifespanCapYears float64
	// Families are the segment families to compute; nil means DefaultFamilies().
	Families []Family
	// HorizonDays is H, the days ahead over which expected purchases and clv_predicted are
	// predicted (default 365).
	HorizonDays int
	// MonthlyDiscountRate discounts clv_predicted per 30-day month (0.01 = 1 %). A pointer so
	// that 0 (no discounting) can be asked for; nil means DefaultMonthlyDiscountRate.
	MonthlyDiscountRate *float64
}

// Family is a kind of segment, the extension point for tier:, rfm: and saved segments. Its
// Membership is a SQL SELECT of (segment text, member_id bigint) rows, each member at most once
// per segment; a row with a NULL member_id declares a segment that has no members, so that it
// is still reported (with zero customers and NULL ratios). The query may read the CTE
// params(tz text, as_of timestamptz): the run's time zone name and the as-of instant A. It is
// trusted SQL written in this repository, never built from input.
type Family struct {
	Name       string
	Membership string
}

// DefaultFamilies are the families of this step: all, store:<code> (members by home store),
// cohort:<YYYY-Qn> (members by the quarter of joined_at in the run's time zone), rfm:<name>
// (members by the run's RFM segment, rfm.go; it reads a table Compute fills), tier:<name>
// (members by club tier as of A, tiers.go; one segment per configured tier) and segment:<id>
// (every saved segment's rules evaluated as of A, saved.go; a table Compute fills) and
// rewards:redeemers / rewards:non-redeemers (rewards.go). Segments are
// the members as of the run (not as of A), as the contract says; every member counts whatever
// its status, erased members included (their purchases are kept, only personal data goes).
func DefaultFamilies() []Family {
	return []Family{
		{Name: "all", Membership: `
			SELECT 'all'::text, m.id FROM members m
			UNION ALL SELECT 'all', NULL::bigint`},
		// Every store is listed, even one nobody calls home.
		{Name: "store", Membership: `
			SELECT 'store:' || s.code, m.id
			FROM stores s LEFT JOIN members m ON m.home_store_id = s.id`},
		{Name: "cohort", Membership: `
			SELECT 'cohort:' || to_char(m.joined_at AT TIME ZONE p.tz, 'YYYY-"Q"Q'), m.id
			FROM members m, params p`},
		rfmFamily(),
		tierFamily(),
		savedFamily(),
		rewardsFamily(),
	}
}

// bounds are the instants that delimit a run's periods, each the start of a calendar day in
// the run's time zone: the window [windowStart, asOf) and the churn periods
// [churnStart, churnMid) and [churnMid, asOf).
type bounds struct {
	asOf, windowStart, churnStart, churnMid time.Time
}

// normalise fills in defaults and checks the options.
func (o Options) normalise(now time.Time) (Options, error) {
	if o.Timezone == nil {
		o.Timezone = time.UTC
	}
	if o.WindowDays == 0 {
		o.WindowDays = DefaultWindowDays
	}
	if o.ChurnPeriodDays == 0 {
		o.ChurnPeriodDays = DefaultChurnPeriodDays
	}
	if o.LifespanCapYears == 0 {
		o.LifespanCapYears = DefaultLifespanCapYears
	}
	if o.Families == nil {
		o.Families = DefaultFamilies()
	}
	if o.HorizonDays == 0 {
		o.HorizonDays = DefaultHorizonDays
	}
	if o.MonthlyDiscountRate == nil {
		d := DefaultMonthlyDiscountRate
		o.MonthlyDiscountRate = &d
	}
	if o.AsOf.IsZero() {
		o.AsOf = now.In(o.Timezone)
	}
	fe := models.FieldErrors{}
	if name := o.Timezone.String(); name == "Local" || name == "" {
		fe.Add("timezone", "must be a named time zone such as Europe/Oslo")
	}
	if o.WindowDays < 1 || o.WindowDays > 100*366 {
		fe.Add("window_days", "must be between 1 and 36600")
	}
	if o.ChurnPeriodDays < 1 || o.ChurnPeriodDays > 100*366 {
		fe.Add("churn_days", "must be between 1 and 36600")
	}
	if !(o.LifespanCapYears > 0 && o.LifespanCapYears <= 1000) {
		fe.Add("lifespan_cap_years", "must be greater than 0 and at most 1000")
	}
	if len(o.Families) == 0 {
		fe.Add("families", "must name at least one segment family")
	}
	if o.HorizonDays < 1 || o.HorizonDays > 100*366 {
		fe.Add("horizon_days", "must be between 1 and 36600")
	}
	if d := *o.MonthlyDiscountRate; !(d >= 0 && d <= 1) {
		fe.Add("monthly_discount_rate", "must be between 0 and 1")
	}
	return o, fe.Err("invalid metrics options")
}

// bounds returns the period bounds: calendar days in the time zone, so a window across a DST
// change still starts at local midnight.
func (o Options) bounds() bounds {
	y, m, d := o.AsOf.Date()
	day := func(back int) time.Time { return time.Date(y, m, d-back, 0, 0, 0, 0, o.Timezone) }
	return bounds{
		asOf:        day(0),
		windowStart: day(o.WindowDays),
		churnStart:  day(2 * o.ChurnPeriodDays),
		churnMid:    day(o.ChurnPeriodDays),
	}
}

// errInProgress is Compute's answer while another run holds LockKey.
func errInProgress() error { return models.Errorf(models.ECONFLICT, "a metrics run is in progress") }

// Compute runs the metrics for opts and stores them as a new snapshot, returning its run id.
// The run row and its segment rows are written in one transaction, so a reader sees a whole
// snapshot or none. If another run holds the lock it returns ECONFLICT at once rather than
// queueing a duplicate run.
func Compute(ctx context.Context, db *models.DB, opts Options) (runID int64, err error) {
	opts, err = opts.normalise(db.Now())
	if err != nil {
		return 0, err
	}
	b := opts.bounds()
	// The VACUUM only when a run may follow: while one holds the lock (another replica's cron,
	// a second request) the answer is ECONFLICT without touching the table. The lock itself is
	// taken in the run's transaction; this look (the lock taken and let go by one statement) only
	// spares the losers the VACUUM.
	var free bool
	if err := db.Pool.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, LockKey).Scan(&free); err != nil {
		return 0, fmt.Errorf("take metrics lock: %w", err)
	}
	if !free {
		return 0, errInProgress()
	}
	if err := vacuumTransactions(ctx, db); err != nil {
		return 0, err
	}
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, LockKey).Scan(&locked); err != nil {
			return fmt.Errorf("take metrics lock: %w", err)
		}
		if !locked {
			return errInProgress()
		}
		err := tx.QueryRow(ctx, `
			INSERT INTO metric_runs (as_of, timezone, window_days, churn_days, lifespan_cap_years, started_at)
			VALUES ($1::date, $2, $3, $4, $5, clock_timestamp())
			RETURNING id`,
			b.asOf.Format(time.DateOnly), opts.Timezone.String(), opts.WindowDays, opts.ChurnPeriodDays,
			opts.LifespanCapYears).Scan(&runID)
		if err != nil {
			return fmt.Errorf("create metrics run: %w", err)
		}
		if err := computeSaved(ctx, tx, opts, b); err != nil {
			return err
		}
		// The model step first: RFM reads its member summary, and the segment statement
		// averages its per-member figures.
		if err := computeModels(ctx, tx, opts, b, runID); err != nil {
			return err
		}
		if err := computeRFM(ctx, tx, b); err != nil {
			return err
		}
		// The member figures straight into the next member_metrics, which the segment
		// statement reads (store.go).
		if err := writeMemberMetrics(ctx, tx, runID, b.asOf.Format(time.DateOnly)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, segmentMetricsSQL(opts.Families),
			opts.Timezone.String(), b.asOf, b.windowStart, runID,
			opts.WindowDays, opts.ChurnPeriodDays, opts.LifespanCapYears); err != nil {
			return fmt.Errorf("compute segment metrics: %w", err)
		}
		// Last: from its swap on, the run locks member_metrics (store.go).
		if err := storeMemberMetrics(ctx, tx, b.asOf.Format(time.DateOnly)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE metric_runs SET status = 'done', finished_at = clock_timestamp() WHERE id = $1`, runID); err != nil {
			return fmt.Errorf("finish metrics run: %w", err)
		}
		return nil
	})
	if err != nil {
		var merr *models.Error
		if errors.As(err, &merr) {
			return 0, err
		}
		return 0, fmt.Errorf("metrics run as of %s: %w", b.asOf.Format(time.DateOnly), err)
	}
	return runID, nil
}

// segmentMetricsSQL builds the one statement that computes every segment of every family.
// Parameters: $1 time zone name, $2 A, $3 A−W, $4 run id, $5 W (days), $6 P (days), $7
// lifespan cap (years). Only trusted family queries are spliced in. It runs after the model
// step, whose temporary tables it reads.
//
// Plan: per_member is the model step's per-member figures: this run's member_metrics rows
// (writeMemberMetrics, store.go), one per member, beside the member summary (metrics_summary,
// model.go), which has already reduced every member's transactions before A to one row (it
// used to be a second scan of the transactions of [min(A−W, A−2P), A) and a hash aggregate of
// its own); a member without a transaction before A has NULL figures, which count as no
// orders, no revenue and no churn-period sale. per_member_lines reduces the window's receipt
// lines (units and margins) to one row per member; each family lists its (segment, member) pairs; one hash join and one
// GROUP BY segment then count, and the ratios are taken from the counts with NULLIF so an
// empty denominator gives NULL, never a division error. The same join averages the model
// figures, so the families' memberships are listed once per run, not twice (docs/benchmarks.md,
// "The nightly job at 1M").
func segmentMetricsSQL(families []Family) string {
	return `
WITH params AS (
    SELECT $1::text AS tz, $2::timestamptz AS as_of
),
per_member AS (
    -- Member transactions only; a refund counts against its member (it inherits the member of
    -- the sale it refunds when recorded), so net revenue may be negative. The summary's figures
    -- are NULL for a member without a transaction before A. member_metrics_next holds this
    -- run's row for every member at this point, also on a back-filled run (store.go).
    SELECT n.member_id, s.orders_window AS orders, s.spend_window AS net_revenue,
           s.bought_before, s.bought_recently,
           n.frequency, n.p_alive, n.expected_purchases, n.clv_predicted
    FROM ` + memberMetricsNext + ` n
    LEFT JOIN metrics_summary s ON s.member_id = n.member_id
),
per_member_lines AS (
    -- Receipt lines of the member transactions in the window (docs/metrics.md, "Units and
    -- margins"): a refund's lines count against its member like its amount; the margin
    -- columns are models.LineMarginSQL (lines of unknown cost counted, never costed at 0). One
    -- hash join of the window's transactions to the lines, the (small) catalogue hashed beside.
    SELECT t.member_id,
           sum(CASE WHEN t.kind = 'sale' THEN i.qty ELSE -i.qty END) AS units,
           count(DISTINCT t.id) FILTER (WHERE t.kind = 'sale') AS itemised_orders,
           ` + models.LineMarginSQL + `
    FROM transactions t
    JOIN transaction_items i ON i.transaction_id = t.id
    LEFT JOIN products p ON p.sku = i.sku
    WHERE t.member_id IS NOT NULL AND t.occurred_at >= $3 AND t.occurred_at < $2
    GROUP BY t.member_id
),
membership (segment, member_id) AS (
    ` + membershipUnion(families) + `
),
counts AS (
    SELECT s.segment,
           count(s.member_id) AS members,
           count(*) FILTER (WHERE pm.orders >= 1) AS customers,
           count(*) FILTER (WHERE pm.orders >= 2) AS repeaters,
           coalesce(sum(pm.orders), 0)::bigint AS orders,
           coalesce(sum(pm.net_revenue), 0)::bigint AS net_revenue,
           count(*) FILTER (WHERE pm.bought_before) AS churn_base,
           count(*) FILTER (WHERE pm.bought_before AND NOT pm.bought_recently) AS churned,
           coalesce(sum(pl.units), 0)::bigint AS units,
           coalesce(sum(pl.itemised_orders), 0)::bigint AS itemised_orders,
           coalesce(sum(pl.lines), 0)::bigint AS lines,
           coalesce(sum(pl.unknown_cost_lines), 0)::bigint AS unknown_cost_lines,
           sum(pl.known_cost_revenue)::bigint AS known_cost_revenue,
           sum(pl.gross_margin)::bigint AS gross_margin,
           -- The model averages: over the segment's members with a purchase before A
           -- (frequency not NULL), each over the members for whom the figure exists; NULL
           -- for a segment without such members.
           (avg(pm.p_alive) FILTER (WHERE pm.frequency IS NOT NULL))::numeric AS p_alive,
           (avg(pm.expected_purchases) FILTER (WHERE pm.frequency IS NOT NULL))::numeric AS expected_purchases,
           (avg(pm.clv_predicted) FILTER (WHERE pm.frequency IS NOT NULL))::numeric AS clv_predicted
    FROM membership s
    LEFT JOIN per_member pm ON pm.member_id = s.member_id
    LEFT JOIN per_member_lines pl ON pl.member_id = s.member_id
    GROUP BY s.segment
),
ratios AS (
    SELECT c.*,
           c.repeaters::numeric / NULLIF(c.customers, 0) AS repeat_purchase_rate,
           c.net_revenue::numeric / NULLIF(c.orders, 0) AS aov,
           c.orders::numeric / NULLIF(c.customers, 0) * 365 / $5::int AS purchase_frequency,
           c.churned::numeric / NULLIF(c.churn_base, 0) AS churn_rate,
           c.units::numeric / NULLIF(c.itemised_orders, 0) AS units_per_transaction,
           c.unknown_cost_lines::numeric / NULLIF(c.lines, 0) AS unknown_cost_share,
           c.gross_margin::numeric / NULLIF(c.known_cost_revenue, 0) AS margin_ratio
    FROM counts c
),
lifespans AS (
    -- 1 ÷ annual churn, annual churn = 1 − (1 − churn)^(365/P), capped; a zero annual churn
    -- (no churn, or one too small for numeric to tell from zero) gives the cap.
    SELECT r.*,
           CASE WHEN r.churn_rate IS NOT NULL THEN
               least($7::numeric, coalesce(
                   1 / NULLIF(1 - power(1 - r.churn_rate, 365 / $6::int::numeric), 0), $7::numeric))
           END AS lifespan_years
    FROM ratios r
)
INSERT INTO segment_metrics (run_id, segment, members, customers, repeat_purchase_rate, orders,
                             net_revenue, aov, purchase_frequency, churn_rate, lifespan_years,
                             clv_historic, units, itemised_orders, units_per_transaction, lines,
                             unknown_cost_lines, unknown_cost_share, known_cost_revenue,
                             gross_margin, margin_ratio, clv_margin_historic, p_alive,
                             expected_purchases, clv_predicted, clv_margin_predicted, expected_churned)
SELECT $4::bigint, l.segment, l.members, l.customers, l.repeat_purchase_rate, l.orders,
       l.net_revenue, l.aov, l.purchase_frequency, l.churn_rate, l.lifespan_years,
       l.aov * l.purchase_frequency * l.lifespan_years,
       l.units, l.itemised_orders, l.units_per_transaction, l.lines,
       l.unknown_cost_lines, l.unknown_cost_share, l.known_cost_revenue,
       l.gross_margin, l.margin_ratio,
       -- CLV on margin: the same CLV with each purchase worth its margin (docs/metrics.md).
       l.aov * l.purchase_frequency * l.lifespan_years * l.margin_ratio,
       l.p_alive, l.expected_purchases, l.clv_predicted,
       -- The segment's margin ratio of the window, as for clv_margin_historic.
       l.clv_predicted * l.margin_ratio,
       1 - l.p_alive
FROM lifespans l`
}

// membershipUnion is the UNION ALL of the families' membership queries, for a CTE
// membership(segment, member_id) next to a CTE params(tz, as_of).
func membershipUnion(families []Family) string {
	memberships := make([]string, len(families))
	for i, f := range families {
		memberships[i] = "(" + strings.TrimSpace(f.Membership) + ")"
	}
	return strings.Join(memberships, "\n    UNION ALL\n    ")
}
