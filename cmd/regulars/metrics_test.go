package main

import (
	"context"
	"strings"
	"testing"

	"github.com/regulars/regulars/jobs/metrics"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

func TestMetricsRunCommand(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.URL(t)
	ctx := context.Background()
	db, err := models.Open(ctx, dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CreateStore(ctx, models.StoreInput{Code: "oslo-1", Name: "Oslo", Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}

	t.Run("a run prints its id and a row per segment", func(t *testing.T) {
		out, err := runCmd(t, dbURL, "metrics", "run", "--as-of", "2026-11-01")
		if err != nil {
			t.Fatalf("metrics run: %v\n%s", err, out)
		}
		t.Log(out)
		for _, want := range []string{"as of 2026-11-01 (UTC, window 365 days, churn period 90 days): ", "\nall ", "\nstore:oslo-1 ",
			"p alive", "clv predicted", "models (horizon 365 days, monthly discount rate 0.01):", "\n  bgnbd ", "\n  gamma_gamma "} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("a run uses the prediction settings it is given", func(t *testing.T) {
		out, err := runCmd(t, dbURL, "metrics", "run", "--as-of", "2026-11-02", "--horizon-days", "90", "--monthly-discount-rate", "0")
		if err != nil {
			t.Fatalf("metrics run: %v\n%s", err, out)
		}
		if want := "models (horizon 90 days, monthly discount rate 0):"; !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	})

	t.Run("a run while another holds the lock fails clearly", func(t *testing.T) {
		conn, err := db.Pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		// jobs/metrics' advisory lock key: holding it stands in for a run in progress.
		const key = metrics.LockKey
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
			t.Fatal(err)
		}
		defer conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key) //nolint:errcheck
		if _, err := runCmd(t, dbURL, "metrics", "run"); err == nil || !strings.Contains(err.Error(), "in progress") {
			t.Errorf("got %v, want an error saying a run is in progress", err)
		}
	})

	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"a bad date is refused", []string{"metrics", "run", "--as-of", "2026-11-31"}, "--as-of must be a date YYYY-MM-DD"},
		{"a window of zero days is refused", []string{"metrics", "run", "--window-days", "0"}, "REGULARS_METRICS_WINDOW_DAYS must be between 1 and 36600"},
		{"a horizon of zero days is refused", []string{"metrics", "run", "--horizon-days", "0"}, "REGULARS_METRICS_HORIZON_DAYS must be between 1 and 36600"},
		{"a discount rate given in percent is refused", []string{"metrics", "run", "--monthly-discount-rate", "5"}, "REGULARS_METRICS_MONTHLY_DISCOUNT_RATE must be a fraction between 0 and 1"},
		{"a subcommand other than run is refused", []string{"metrics", "show"}, "usage: regulars metrics run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := runCmd(t, dbURL, tc.args...); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestMetricsSettingsAreCheckedAtStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"the defaults are fine", nil, ""},
		{"a schedule that is not cron is refused", map[string]string{"REGULARS_METRICS_SCHEDULE": "nightly"}, "REGULARS_METRICS_SCHEDULE"},
		{"a window that is not a number is refused", map[string]string{"REGULARS_METRICS_WINDOW_DAYS": "a year"}, "REGULARS_METRICS_WINDOW_DAYS must be a whole number"},
		{"a negative churn period is refused", map[string]string{"REGULARS_METRICS_CHURN_DAYS": "-90"}, "REGULARS_METRICS_CHURN_DAYS must be between"},
		{"a zero lifespan cap is refused", map[string]string{"REGULARS_METRICS_LIFESPAN_CAP_YEARS": "0"}, "REGULARS_METRICS_LIFESPAN_CAP_YEARS must be greater than 0"},
		{"a horizon that is not a number is refused", map[string]string{"REGULARS_METRICS_HORIZON_DAYS": "1y"}, "REGULARS_METRICS_HORIZON_DAYS must be a whole number"},
		{"a horizon over a century is refused", map[string]string{"REGULARS_METRICS_HORIZON_DAYS": "40000"}, "REGULARS_METRICS_HORIZON_DAYS must be between 1 and 36600"},
		{"a discount rate that is not a number is refused", map[string]string{"REGULARS_METRICS_MONTHLY_DISCOUNT_RATE": "1%"}, "REGULARS_METRICS_MONTHLY_DISCOUNT_RATE must be a fraction"},
		{"a negative discount rate is refused", map[string]string{"REGULARS_METRICS_MONTHLY_DISCOUNT_RATE": "-0.01"}, "REGULARS_METRICS_MONTHLY_DISCOUNT_RATE must be a fraction between 0 and 1"},
		{"no discounting is allowed", map[string]string{"REGULARS_METRICS_MONTHLY_DISCOUNT_RATE": "0"}, ""},
		{"a lifespan cap that is not a number is refused", map[string]string{"REGULARS_METRICS_LIFESPAN_CAP_YEARS": "ten"}, "REGULARS_METRICS_LIFESPAN_CAP_YEARS must be a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(func(k string) string { return tc.env[k] })
			if err == nil {
				err = c.validate()
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
