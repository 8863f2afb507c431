package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models"
)

// ModelFit is one model fitted in a run (GET /metrics/model). Params is nil when the fit
// failed; Note says why, and also when a fit that did not converge was not used.
type ModelFit struct {
	Model         string             `json:"model"`  // "bgnbd" or "gamma_gamma"
	Params        map[string]float64 `json:"params"` // bgnbd: r, alpha (per day), a, b; gamma_gamma: p, q, gamma (major units)
	LogLikelihood *float64           `json:"log_likelihood"`
	SampleSize    int64              `json:"sample_size"` // members the fit saw
	Groups        int64              `json:"groups"`      // distinct summaries among them
	Converged     bool               `json:"converged"`
	Note          string             `json:"note"`
}

// ModelSnapshot is the model fits of one run with the prediction settings they were used with
// (nil on runs made before the model step existed).
type ModelSnapshot struct {
	Run                 Run        `json:"run"`
	HorizonDays         *int       `json:"horizon_days"`
	MonthlyDiscountRate *float64   `json:"monthly_discount_rate"`
	Models              []ModelFit `json:"models"`
}

// LatestModels reads the model fits of the newest finished run for the date asOf (or of all
// runs when asOf is nil), as Latest does for the segments. ENOTFOUND when there is no run.
func LatestModels(ctx context.Context, db *models.DB, asOf *time.Time) (*ModelSnapshot, error) {
	var date *string
	if asOf != nil {
		d := asOf.Format(time.DateOnly)
		date = &d
	}
	var s ModelSnapshot
	var err error
	if s.Run, err = findRun(ctx, db, date); err != nil {
		return nil, err
	}
	if err := db.Pool.QueryRow(ctx, `SELECT horizon_days, monthly_discount_rate::float8 FROM metric_runs WHERE id = $1`,
		s.Run.ID).Scan(&s.HorizonDays, &s.MonthlyDiscountRate); err != nil {
		return nil, fmt.Errorf("read model settings of run %d: %w", s.Run.ID, err)
	}
	rows, err := db.Pool.Query(ctx, `
		SELECT model, params, log_likelihood, sample_size, groups, converged, note
		FROM metric_models WHERE run_id = $1 ORDER BY model`, s.Run.ID)
	if err != nil {
		return nil, fmt.Errorf("read models of run %d: %w", s.Run.ID, err)
	}
	s.Models, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ModelFit, error) {
		var m ModelFit
		var params []byte
		if err := row.Scan(&m.Model, &params, &m.LogLikelihood, &m.SampleSize, &m.Groups, &m.Converged, &m.Note); err != nil {
			return m, err
		}
		if params != nil {
			if err := json.Unmarshal(params, &m.Params); err != nil {
				return m, fmt.Errorf("decode %s parameters: %w", m.Model, err)
			}
		}
		return m, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read models of run %d: %w", s.Run.ID, err)
	}
	if s.Models == nil {
		s.Models = []ModelFit{}
	}
	return &s, nil
}
