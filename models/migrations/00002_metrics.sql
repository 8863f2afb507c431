-- +goose Up
-- Segment metrics: every run of the metrics job is a dated snapshot, one row per segment, so
-- trends can be charted. Money columns are minor units of the shop's currency (numeric where a
-- ratio makes them fractional). Ratios are NULL where their denominator is zero, never NaN.

-- status: a run is written in one transaction, so readers only ever see 'done' rows from this
-- job; 'running' and 'failed' are there for later steps that fill in the model-based figures.
CREATE TABLE metric_runs (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    as_of              date NOT NULL,
    timezone           text NOT NULL,
    window_days        int NOT NULL CHECK (window_days > 0),
    churn_days         int NOT NULL CHECK (churn_days > 0),
    lifespan_cap_years numeric NOT NULL CHECK (lifespan_cap_years > 0),
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    status             text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed'))
);
-- Latest(as_of) and Series read the newest finished run per date.
CREATE INDEX metric_runs_as_of ON metric_runs (as_of, finished_at DESC) WHERE status = 'done';

-- segment: 'all', 'store:<code>', 'cohort:<YYYY-Qn>' (later also 'tier:', 'rfm:', saved segments).
-- members is the size of the segment as of the run; the rest follow docs/metrics.md.
CREATE TABLE segment_metrics (
    run_id               bigint NOT NULL REFERENCES metric_runs (id) ON DELETE CASCADE,
    segment              text NOT NULL,
    members              bigint NOT NULL,
    customers            bigint NOT NULL,
    repeat_purchase_rate numeric,
    orders               bigint NOT NULL,
    net_revenue          bigint NOT NULL,
    aov                  numeric,
    purchase_frequency   numeric,
    churn_rate           numeric,
    lifespan_years       numeric,
    clv_historic         numeric,
    -- Model-based figures (BG/NBD, Gamma-Gamma), filled in by a later step of the job.
    p_alive              numeric,
    expected_purchases   numeric,
    clv_predicted        numeric,
    expected_churned     numeric,
    PRIMARY KEY (run_id, segment)
);
-- Series: one segment over many runs.
CREATE INDEX segment_metrics_segment ON segment_metrics (segment, run_id);

-- +goose Down
DROP TABLE segment_metrics;
DROP TABLE metric_runs;
