package handlers

import (
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/jobs/metrics"
	"github.com/regulars/regulars/models"
)

// metricsRunView is a run as the API shows it: the as-of date as YYYY-MM-DD, not as a time.
type metricsRunView struct {
	ID               int64     `json:"id"`
	AsOf             string    `json:"as_of"`
	Timezone         string    `json:"timezone"`
	WindowDays       int       `json:"window_days"`
	ChurnDays        int       `json:"churn_days"`
	LifespanCapYears float64   `json:"lifespan_cap_years"`
	FinishedAt       time.Time `json:"finished_at"`
}

// pointView is one value of a series, dated YYYY-MM-DD.
type pointView struct {
	AsOf  string   `json:"as_of"`
	Value *float64 `json:"value"`
}

// runMetrics computes a snapshot now, as of the body's as_of or today in the time zone.
func (s *Server) runMetrics(c echo.Context) error {
	var in struct {
		AsOf *string `json:"as_of"`
	}
	// The body is optional: an empty one means "as of today".
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	opts := s.metricsOpts
	// Fix the date here rather than in Compute so the answer can name it.
	opts.AsOf = s.db.Now().In(s.tz)
	if in.AsOf != nil {
		d, err := parseDate("as_of", *in.AsOf)
		if err != nil {
			return err
		}
		opts.AsOf = d
	}
	s.allowLongRun(c)
	id, err := metrics.Compute(c.Request().Context(), s.db, opts)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"id": id, "as_of": opts.AsOf.Format(time.DateOnly)})
}

// metricsSegments reads the newest snapshot, or the newest one of the as_of date.
func (s *Server) metricsSegments(c echo.Context) error {
	asOf, err := optionalDate(c, "as_of")
	if err != nil {
		return err
	}
	snap, err := metrics.Latest(c.Request().Context(), s.db, asOf)
	if err != nil {
		return err
	}
	segs := snap.Segments
	if segs == nil {
		segs = []metrics.SegmentMetrics{}
	}
	for i := range segs {
		finite(&segs[i].RepeatPurchaseRate, &segs[i].AOV, &segs[i].PurchaseFrequency, &segs[i].ChurnRate,
			&segs[i].LifespanYears, &segs[i].CLVHistoric, &segs[i].PAlive, &segs[i].ExpectedPurchases,
			&segs[i].CLVPredicted, &segs[i].ExpectedChurned)
	}
	return c.JSON(http.StatusOK, map[string]any{"run": runView(snap.Run), "segments": segs})
}

// modelsView is the body of GET /metrics/model: the run, the prediction settings it used and
// its fits.
type modelsView struct {
	Run                 metricsRunView     `json:"run"`
	HorizonDays         *int               `json:"horizon_days"`
	MonthlyDiscountRate *float64           `json:"monthly_discount_rate"`
	Models              []metrics.ModelFit `json:"models"`
}

// metricsModel reads the BG/NBD and Gamma-Gamma fits of the newest run, or of the newest run
// of the as_of date.
func (s *Server) metricsModel(c echo.Context) error {
	asOf, err := optionalDate(c, "as_of")
	if err != nil {
		return err
	}
	snap, err := metrics.LatestModels(c.Request().Context(), s.db, asOf)
	if err != nil {
		return err
	}
	for i := range snap.Models {
		finite(&snap.Models[i].LogLikelihood)
	}
	finite(&snap.MonthlyDiscountRate)
	return c.JSON(http.StatusOK, modelsView{Run: runView(snap.Run), HorizonDays: snap.HorizonDays,
		MonthlyDiscountRate: snap.MonthlyDiscountRate, Models: snap.Models})
}

// runView is a run as the API shows it.
func runView(r metrics.Run) metricsRunView {
	return metricsRunView{ID: r.ID, AsOf: r.AsOf.Format(time.DateOnly), Timezone: r.Timezone,
		WindowDays: r.WindowDays, ChurnDays: r.ChurnPeriodDays, LifespanCapYears: r.LifespanCapYears,
		FinishedAt: r.FinishedAt}
}

// metricsSeries gives one figure of one segment over a range of as-of dates, for charts.
// segment defaults to all, to to today in the time zone, from to a year before to.
func (s *Server) metricsSeries(c echo.Context) error {
	segment := c.QueryParam("segment")
	if segment == "" {
		segment = "all"
	}
	metric := c.QueryParam("metric")
	fe := models.FieldErrors{}
	if metric == "" {
		fe.Add("metric", "is required, e.g. clv_historic")
	}
	y, m, d := s.db.Now().In(s.tz).Date()
	to := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	if v := c.QueryParam("to"); v != "" {
		var err error
		if to, err = time.Parse(time.DateOnly, v); err != nil {
			fe.Add("to", "must be a date YYYY-MM-DD")
		}
	}
	from := to.AddDate(-1, 0, 0)
	if v := c.QueryParam("from"); v != "" {
		var err error
		if from, err = time.Parse(time.DateOnly, v); err != nil {
			fe.Add("from", "must be a date YYYY-MM-DD")
		}
	}
	if len(fe) == 0 && from.After(to) {
		fe.Add("from", "must not be after to")
	}
	if err := fe.Err("invalid series"); err != nil {
		return err
	}
	points, err := metrics.Series(c.Request().Context(), s.db, segment, metric, from, to)
	if err != nil {
		return err
	}
	out := make([]pointView, len(points))
	for i, p := range points {
		finite(&p.Value)
		out[i] = pointView{AsOf: p.AsOf.Format(time.DateOnly), Value: p.Value}
	}
	return c.JSON(http.StatusOK, map[string]any{
		"segment": segment, "metric": metric,
		"from": from.Format(time.DateOnly), "to": to.Format(time.DateOnly), "points": out,
	})
}

// parseDate reads a YYYY-MM-DD date; a bad one is EINVALID naming field.
func parseDate(field, v string) (time.Time, error) {
	d, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, &models.Error{Code: models.EINVALID, Message: "invalid date",
			Fields: map[string]string{field: "must be a date YYYY-MM-DD, not " + v}}
	}
	return d, nil
}

// finite turns NaN and infinities into nil: encoding/json cannot write them, and the contract
// says an undefined figure is null. The SQL already gives NULL for empty denominators; this
// only keeps a response from failing halfway if a figure ever overflows.
func finite(vs ...**float64) {
	for _, v := range vs {
		if *v != nil && (math.IsNaN(**v) || math.IsInf(**v, 0)) {
			*v = nil
		}
	}
}

// optionalDate reads query parameter name as YYYY-MM-DD; nil when it is absent.
func optionalDate(c echo.Context, name string) (*time.Time, error) {
	v := c.QueryParam(name)
	if v == "" {
		return nil, nil
	}
	d, err := parseDate(name, v)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// metricsRunWrite is how long a metrics run started over HTTP may take before it answers. The
// server's 60 s write timeout suits ordinary requests; a run over a million members takes about
// a minute on 2 cores (docs/benchmarks.md), and cutting it off would leave the caller without
// an answer while the run goes on.
const metricsRunWrite = 30 * time.Minute

// allowLongRun lifts this request's write deadline to metricsRunWrite.
func (s *Server) allowLongRun(c echo.Context) {
	if err := http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(metricsRunWrite)); err != nil {
		s.log.Warn("metrics run: cannot extend the write deadline", "err", err)
	}
}
