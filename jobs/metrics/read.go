package metrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models"
)

// Run describes one finished metrics run: a dated snapshot and the settings it was computed with.
type Run struct {
	ID               int64     `json:"id"`
	AsOf             time.Time `json:"as_of"` // a date: midnight UTC of the as-of date
	Timezone         string    `json:"timezone"`
	WindowDays       int       `json:"window_days"`
	ChurnPeriodDays  int       `json:"churn_days"`
	LifespanCapYears float64   `json:"lifespan_cap_years"`
	StartedAt        time.Time `json:"started_at"`
	FinishedAt       time.Time `json:"finished_at"`
}

// SegmentMetrics is one segment's row of a snapshot. Money is in minor units of the shop's
// currency; nil means the figure is undefined (an empty denominator) or, for the model-based
// figures, not computed yet.
type SegmentMetrics struct {
	Segment            string   `json:"segment"`
	Members            int64    `json:"members"`
	Customers          int64    `json:"customers"`
	RepeatPurchaseRate *float64 `json:"repeat_purchase_rate"`
	Orders             int64    `json:"orders"`
	NetRevenue         int64    `json:"net_revenue"`
	AOV                *float64 `json:"aov"`
	PurchaseFrequency  *float64 `json:"purchase_frequency"`
	ChurnRate          *float64 `json:"churn_rate"`
	LifespanYears      *float64 `json:"lifespan_years"`
	CLVHistoric        *float64 `json:"clv_historic"`
	PAlive             *float64 `json:"p_alive"`
	ExpectedPurchases  *float64 `json:"expected_purchases"`
	CLVPredicted       *float64 `json:"clv_predicted"`
	ExpectedChurned    *float64 `json:"expected_churned"`
	// Units and margins (docs/metrics.md): nil on runs made before they existed; the margin
	// figures are also nil where no line of the segment's window has a known cost.
	Units               *int64   `json:"units"`
	ItemisedOrders      *int64   `json:"itemised_orders"`
	UnitsPerTransaction *float64 `json:"units_per_transaction"`
	Lines               *int64   `json:"lines"`
	UnknownCostLines    *int64   `json:"unknown_cost_lines"`
	UnknownCostShare    *float64 `json:"unknown_cost_share"`
	KnownCostRevenue    *int64   `json:"known_cost_revenue"`
	GrossMargin         *int64   `json:"gross_margin"`
	MarginRatio         *float64 `json:"margin_ratio"`
	CLVMarginHistoric   *float64 `json:"clv_margin_historic"`
	CLVMarginPredicted  *float64 `json:"clv_margin_predicted"`
}

// Snapshot is one run with its segments, ordered by segment name.
type Snapshot struct {
	Run      Run              `json:"run"`
	Segments []SegmentMetrics `json:"segments"`
}

// Latest reads the newest finished snapshot for the date asOf (its year, month and day), or
// the newest of all when asOf is nil. ENOTFOUND when there is none.
func Latest(ctx context.Context, db *models.DB, asOf *time.Time) (*Snapshot, error) {
	var date *string
	if asOf != nil {
		d := asOf.Format(time.DateOnly)
		date = &d
	}
	var s Snapshot
	r := &s.Run
	var err error
	if s.Run, err = findRun(ctx, db, date); err != nil {
		return nil, err
	}
	rows, err := db.Pool.Query(ctx, `
		SELECT segment, members, customers, repeat_purchase_rate::float8, orders, net_revenue,
		       aov::float8, purchase_frequency::float8, churn_rate::float8, lifespan_years::float8,
		       clv_historic::float8, p_alive::float8, expected_purchases::float8,
		       clv_predicted::float8, expected_churned::float8,
		       units, itemised_orders, units_per_transaction::float8, lines, unknown_cost_lines,
		       unknown_cost_share::float8, known_cost_revenue, gross_margin, margin_ratio::float8,
		       clv_margin_historic::float8, clv_margin_predicted::float8
		FROM segment_metrics WHERE run_id = $1 ORDER BY segment`, r.ID)
	if err != nil {
		return nil, fmt.Errorf("read metrics of run %d: %w", r.ID, err)
	}
	s.Segments, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (SegmentMetrics, error) {
		var m SegmentMetrics
		err := row.Scan(&m.Segment, &m.Members, &m.Customers, &m.RepeatPurchaseRate, &m.Orders, &m.NetRevenue,
			&m.AOV, &m.PurchaseFrequency, &m.ChurnRate, &m.LifespanYears, &m.CLVHistoric, &m.PAlive,
			&m.ExpectedPurchases, &m.CLVPredicted, &m.ExpectedChurned,
			&m.Units, &m.ItemisedOrders, &m.UnitsPerTransaction, &m.Lines, &m.UnknownCostLines,
			&m.UnknownCostShare, &m.KnownCostRevenue, &m.GrossMargin, &m.MarginRatio,
			&m.CLVMarginHistoric, &m.CLVMarginPredicted)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("read metrics of run %d: %w", r.ID, err)
	}
	return &s, nil
}

// seriesColumns are the metrics a series may chart, by API name. The map is the whitelist that
// keeps the column name in Series out of reach of input.
var seriesColumns = map[string]string{
	"members": "members", "customers": "customers", "repeat_purchase_rate": "repeat_purchase_rate",
	"orders": "orders", "net_revenue": "net_revenue", "aov": "aov",
	"purchase_frequency": "purchase_frequency", "churn_rate": "churn_rate",
	"lifespan_years": "lifespan_years", "clv_historic": "clv_historic", "p_alive": "p_alive",
	"expected_purchases": "expected_purchases", "clv_predicted": "clv_predicted",
	"expected_churned": "expected_churned",
	"units":            "units", "itemised_orders": "itemised_orders",
	"units_per_transaction": "units_per_transaction", "lines": "lines",
	"unknown_cost_lines": "unknown_cost_lines", "unknown_cost_share": "unknown_cost_share",
	"known_cost_revenue": "known_cost_revenue", "gross_margin": "gross_margin",
	"margin_ratio": "margin_ratio", "clv_margin_historic": "clv_margin_historic",
	"clv_margin_predicted": "clv_margin_predicted",
}

// Point is one value of a series; Value is nil where the metric is undefined.
type Point struct {
	AsOf  time.Time `json:"as_of"`
	Value *float64  `json:"value"`
}

// Series gives metric for segment on every as-of date from from to to (inclusive dates), one
// point per date from that date's newest finished run, oldest first. An unknown metric is
// EINVALID; a date with no finished run that holds the segment has no point.
func Series(ctx context.Context, db *models.DB, segment, metric string, from, to time.Time) ([]Point, error) {
	column, ok := seriesColumns[metric]
	if !ok {
		return nil, &models.Error{Code: models.EINVALID, Message: "invalid series",
			Fields: map[string]string{"metric": "unknown metric " + metric}}
	}
	// DISTINCT ON keeps the first row per date in ORDER BY order: the newest run of that date.
	rows, err := db.Pool.Query(ctx, `
		SELECT DISTINCT ON (r.as_of) r.as_of, sm.`+column+`::float8
		FROM metric_runs r
		JOIN segment_metrics sm ON sm.run_id = r.id AND sm.segment = $1
		WHERE r.status = 'done' AND r.as_of BETWEEN $2::date AND $3::date
		ORDER BY r.as_of, r.finished_at DESC, r.id DESC`,
		segment, from.Format(time.DateOnly), to.Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("read %s series of %s: %w", metric, segment, err)
	}
	points, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Point, error) {
		var p Point
		err := row.Scan(&p.AsOf, &p.Value)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s series of %s: %w", metric, segment, err)
	}
	return points, nil
}

// findRun finds the newest finished run for date (YYYY-MM-DD), or the newest of all when date
// is nil. ENOTFOUND when there is none.
func findRun(ctx context.Context, db *models.DB, date *string) (Run, error) {
	var r Run
	err := db.Pool.QueryRow(ctx, `
		SELECT id, as_of, timezone, window_days, churn_days, lifespan_cap_years::float8, started_at, finished_at
		FROM metric_runs
		WHERE status = 'done' AND ($1::date IS NULL OR as_of = $1::date)
		ORDER BY as_of DESC, finished_at DESC, id DESC
		LIMIT 1`, date).
		Scan(&r.ID, &r.AsOf, &r.Timezone, &r.WindowDays, &r.ChurnPeriodDays, &r.LifespanCapYears, &r.StartedAt, &r.FinishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		if date != nil {
			return r, models.Errorf(models.ENOTFOUND, "no metrics as of %s", *date)
		}
		return r, models.Errorf(models.ENOTFOUND, "no metrics have been computed yet")
	}
	if err != nil {
		return r, fmt.Errorf("find metrics run: %w", err)
	}
	return r, nil
}
