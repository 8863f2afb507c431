-- +goose Up
-- Model-based metrics (docs/metrics.md, "Model-based figures"): the BG/NBD and Gamma-Gamma fits
-- of each run, and the latest per-member figures for segment targeting.

-- The prediction settings of a run; NULL on runs made before this migration.
ALTER TABLE metric_runs
    ADD COLUMN horizon_days          int CHECK (horizon_days > 0),
    ADD COLUMN monthly_discount_rate numeric CHECK (monthly_discount_rate > -1);

-- One row per run and model, also when the fit failed: params is then NULL and note says why
-- (not identified, no data, not converged). params holds the fitted parameters even when the
-- fit did not converge, but only converged fits are used for predictions. Units: days for
-- BG/NBD (α per day), major currency units for Gamma-Gamma (γ).
CREATE TABLE metric_models (
    run_id         bigint NOT NULL REFERENCES metric_runs (id) ON DELETE CASCADE,
    model          text NOT NULL CHECK (model IN ('bgnbd', 'gamma_gamma')),
    params         jsonb,
    log_likelihood double precision,
    sample_size    bigint NOT NULL,
    groups         bigint NOT NULL,
    converged      boolean NOT NULL,
    gradient_norm  double precision,
    note           text NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, model)
);

-- Latest figures per member, overwritten by each run whose as-of date is not older than the one
-- that wrote the row (a back-filled snapshot does not replace newer values). Every member has a
-- row after a run; the summary and model columns are NULL for members without a purchase
-- before as_of, the model columns also when the fit failed. Money in minor units.
CREATE TABLE member_metrics (
    member_id                bigint PRIMARY KEY REFERENCES members (id),
    run_id                   bigint NOT NULL REFERENCES metric_runs (id) ON DELETE CASCADE,
    as_of                    date NOT NULL,
    days_since_last_purchase int,
    orders_365d              int NOT NULL,
    spend_365d               bigint NOT NULL,
    frequency                int,
    recency_days             int,
    t_days                   int,
    monetary_value           numeric,
    p_alive                  double precision,
    expected_purchases       double precision,
    expected_spend           double precision,
    clv_predicted            double precision,
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX member_metrics_run ON member_metrics (run_id);

-- +goose Down
DROP TABLE member_metrics;
DROP TABLE metric_models;
ALTER TABLE metric_runs DROP COLUMN monthly_discount_rate, DROP COLUMN horizon_days;
