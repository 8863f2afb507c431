package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/regulars/regulars/jobs/metrics"
	"github.com/regulars/regulars/models"
)

// metricsRun is `regulars metrics run [--as-of DATE]`: one snapshot now, then a table of it.
func (env *environment) metricsRun(ctx context.Context, args []string) error {
	var asOf string
	if err := env.parse("metrics run", args, func(fs *flag.FlagSet) {
		fs.StringVar(&asOf, "as-of", "", "as-of date YYYY-MM-DD (default today in REGULARS_TIMEZONE)")
		fs.IntVar(&env.cfg.MetricsWindowDays, "window-days", env.cfg.MetricsWindowDays, "window W in days (REGULARS_METRICS_WINDOW_DAYS)")
		fs.IntVar(&env.cfg.MetricsChurnDays, "churn-days", env.cfg.MetricsChurnDays, "churn period P in days (REGULARS_METRICS_CHURN_DAYS)")
		fs.Float64Var(&env.cfg.MetricsLifespanCapYears, "lifespan-cap-years", env.cfg.MetricsLifespanCapYears, "cap of lifespan_years (REGULARS_METRICS_LIFESPAN_CAP_YEARS)")
		fs.IntVar(&env.cfg.MetricsHorizonDays, "horizon-days", env.cfg.MetricsHorizonDays, "horizon H of the predictions in days (REGULARS_METRICS_HORIZON_DAYS)")
		fs.Float64Var(&env.cfg.MetricsMonthlyDiscountRate, "monthly-discount-rate", env.cfg.MetricsMonthlyDiscountRate, "monthly discount rate of clv_predicted, 0.01 = 1 % (REGULARS_METRICS_MONTHLY_DISCOUNT_RATE)")
	}); err != nil {
		return err
	}
	opts, err := env.cfg.metricsOptions()
	if err != nil {
		return err
	}
	if asOf != "" {
		d, err := time.Parse(time.DateOnly, asOf)
		if err != nil {
			return fmt.Errorf("--as-of must be a date YYYY-MM-DD, not %q", asOf)
		}
		opts.AsOf = d
	}
	db, err := env.openDatabase(ctx, env.quietLogger())
	if err != nil {
		return err
	}
	defer db.Close()
	if opts.AsOf.IsZero() {
		// Fixed here, by the database's clock as Compute would, so the snapshot can be read back.
		opts.AsOf = db.Now().In(opts.Timezone)
	}
	start := time.Now()
	runID, err := metrics.Compute(ctx, db.DB, opts)
	if models.ErrorCode(err) == models.ECONFLICT {
		return errors.New("another metrics run is in progress; try again when it has finished")
	}
	if err != nil {
		return err
	}
	took := time.Since(start)
	date := time.Date(opts.AsOf.Year(), opts.AsOf.Month(), opts.AsOf.Day(), 0, 0, 0, 0, time.UTC)
	snap, err := metrics.Latest(ctx, db.DB, &date)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "metrics run %d as of %s (%s, window %d days, churn period %d days): %d segments in %s\n",
		runID, date.Format(time.DateOnly), opts.Timezone, opts.WindowDays, opts.ChurnPeriodDays,
		len(snap.Segments), took.Round(time.Millisecond))
	if snap.Run.ID != runID {
		// Another run of the same date finished in between; its figures are the ones shown.
		fmt.Fprintf(env.stdout, "(showing run %d, a newer run of the same date)\n", snap.Run.ID)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "segment\tmembers\tcustomers\trepeat rate\taov\tchurn\tclv historic\tp alive\tclv predicted")
	for _, s := range snap.Segments {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Segment, s.Members, s.Customers,
			percent(s.RepeatPurchaseRate), decimal(s.AOV), percent(s.ChurnRate), decimal(s.CLVHistoric),
			percent(s.PAlive), decimal(s.CLVPredicted))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, "aov and clv are in minor units; - marks a figure that is undefined")
	fits, err := metrics.LatestModels(ctx, db.DB, &date)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "models (horizon %d days, monthly discount rate %g):\n", opts.HorizonDays, *opts.MonthlyDiscountRate)
	for _, m := range fits.Models {
		fmt.Fprintf(env.stdout, "  %s\n", modelLine(m))
	}
	return nil
}

// modelLine is one fitted model on one line: its parameters in a fixed order, the fit's
// quality, and the note when it was not used.
func modelLine(m metrics.ModelFit) string {
	var b strings.Builder
	b.WriteString(m.Model)
	order := map[string][]string{"bgnbd": {"r", "alpha", "a", "b"}, "gamma_gamma": {"p", "q", "gamma"}}[m.Model]
	for _, k := range order {
		if v, ok := m.Params[k]; ok {
			fmt.Fprintf(&b, " %s=%.4g", k, v)
		}
	}
	if m.LogLikelihood != nil {
		fmt.Fprintf(&b, " log-likelihood=%.6g", *m.LogLikelihood)
	}
	fmt.Fprintf(&b, " n=%d converged=%t", m.SampleSize, m.Converged)
	if m.Note != "" {
		fmt.Fprintf(&b, " (%s)", m.Note)
	}
	return b.String()
}

func percent(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v*100, 'f', 1, 64) + "%"
}

func decimal(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 2, 64)
}
